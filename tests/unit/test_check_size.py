"""scripts/check_size.py, run by the test command, names modules over 400 lines and functions over 60."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check_size():
    spec = importlib.util.spec_from_file_location("check_size", ROOT / "scripts" / "check_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_functions_and_modules_are_named(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "long_function.py").write_text(f"def too_long():\n{body}\n\n\ndef fine():\n    return 1\n")
    (tmp_path / "long_module.py").write_text("\n".join(f"A{i} = {i}" for i in range(401)) + "\n")
    (tmp_path / "ok.py").write_text("def f():\n    return 1\n")
    found = _check_size().offenders(tmp_path)
    assert len(found) == 2
    assert any("long_function.py:1: function too_long is 61 lines" in f for f in found)
    assert any("long_module.py: 401 lines" in f for f in found)


def test_the_package_itself_passes():
    assert _check_size().offenders(ROOT / "edge_agent") == []
