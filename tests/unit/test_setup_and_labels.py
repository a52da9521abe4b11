"""Set-up and tooling a technician meets first: the licence metadata, the model's labels, setup.sh's options."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from edge_agent.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_license_is_an_spdx_string_so_setuptools_does_not_warn() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


def test_models_labels_lists_the_coco_classes_of_the_default_model(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/cameras.yaml here: the default model
    assert main(["models", "labels"]) == 0
    lines = [x.split() for x in capsys.readouterr().out.splitlines() if not x.startswith("#")]
    assert len(lines) == 80 and lines[0] == ["0", "person"] and lines[8] == ["8", "boat"]  # COCO-80 order


def test_setup_refuses_an_unknown_option_before_doing_anything() -> None:
    res = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--with-ultra"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2 and "known: --with-ultralytics" in res.stderr
