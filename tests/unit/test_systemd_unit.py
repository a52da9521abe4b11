"""deploy/systemd/edge-agent.service checked by systemd's own tools (systemd-analyze)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "edge-agent.service"
INSTALLED_BIN = "/opt/edge-agent/venv/bin/edge-agent"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit as installed, but running this venv's edge-agent (verify checks that ExecStart exists)."""
    text = UNIT.read_text()
    assert INSTALLED_BIN in text
    out = tmp_path / "edge-agent.service"
    out.write_text(text.replace(INSTALLED_BIN, str(Path(sys.executable).parent / "edge-agent")))
    return out


def settings(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M))


def test_unit_verifies_without_a_single_warning(tmp_path):
    unit = unit_for_this_machine(tmp_path)
    res = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr
    # the same check does see a mistake (verify only warns on a value it cannot parse)
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("WatchdogSec=60", "WatchdogSec=sixty"))
    res = subprocess.run([ANALYZE, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "WatchdogSec" in res.stderr or "sec value" in res.stderr


def test_unit_is_a_watched_hardened_service(tmp_path):
    s = settings(UNIT.read_text())
    assert s["Type"] == "notify" and int(s["WatchdogSec"]) > 0 and s["Restart"] == "on-failure"
    assert s["User"] == "edge-agent" and s["StateDirectory"] == "edge-agent"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    res = subprocess.run([ANALYZE, "security", "--offline=true", str(unit_for_this_machine(tmp_path))],
                         capture_output=True, text=True, timeout=60)
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", res.stdout).group(1))
    assert exposure <= 2.0, res.stdout  # systemd's scale: 0 (locked down) .. 10 (unprotected); <= 2 is "OK"
