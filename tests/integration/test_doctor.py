"""`edge-agent doctor` against real parts: a GStreamer RTSP camera, a mosquitto that wants a password,
the real model. Each problem is one line naming it, with its fix; exit 0 / 1 (would not run) / 2 (warnings)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.mosquitto import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(rtsp_server, small_clip, mosquitto_factory, tmp_path):
    broker = mosquitto_factory(users={"box": "right-password"})
    camera = rtsp_server({"cam": small_clip}, loop=True)

    def write(camera_url: str | None = None, password: str = "right-password") -> Path:
        (tmp_path / "zones").mkdir(exist_ok=True)
        (tmp_path / "zones" / "cam.yaml").write_text(yaml.safe_dump({"zones": []}))
        (tmp_path / "mqtt-password").write_text(password + "\n")
        cfg = tmp_path / "cameras.yaml"
        cfg.write_text(yaml.safe_dump({
            "site": {"id": "s1"}, "device": {"id": "d1"},
            "alarms": {"store_dir": str(tmp_path / "data" / "media")},
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "box", "password_file": "mqtt-password",
                     "outbox": {"path": str(tmp_path / "data" / "outbox.sqlite")}},
            "cameras": [{"id": "cam", "url": camera_url or camera.url("cam")}],
        }))
        return cfg

    return write


def doctor(cfg: Path, **env: str) -> tuple[int, dict[str, list[str]]]:
    res = subprocess.run([sys.executable, "-m", "edge_agent.cli", "doctor", "--config", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    lines: dict[str, list[str]] = {"ok": [], "warn": [], "FAIL": []}
    out = res.stdout.splitlines()
    for i, line in enumerate(out):
        level = line.split(" ", 1)[0]
        if level in lines:
            fix = out[i + 1].strip() if i + 1 < len(out) and out[i + 1].startswith("      fix:") else ""
            lines[level].append(line + (" | " + fix if fix else ""))
    return res.returncode, lines


def not_clock(lines: list[str]) -> list[str]:
    return [x for x in lines if "clock:" not in x]  # this machine's NTP state is not the test's to choose


def test_good_site(site):
    code, lines = doctor(site())
    assert lines["FAIL"] == [] and not_clock(lines["warn"]) == [], lines
    assert code == (2 if lines["warn"] else 0)
    assert any(x.startswith("ok    camera cam") and "320x240" in x and "25 fps" in x and "GOP 25" in x
               for x in lines["ok"]), lines["ok"]  # the clip's real size, rate and keyframe interval
    assert any("mqtt as box: connected" in x for x in lines["ok"])
    assert any("model nanodet-g-416" in x and "matches the manifest" in x for x in lines["ok"])


def test_unreachable_camera_is_a_warning_naming_it(site):
    code, lines = doctor(site(camera_url=f"rtsp://127.0.0.1:{free_port()}/cam"))
    (warn,) = not_clock(lines["warn"])
    assert code == 2 and lines["FAIL"] == []
    assert warn.startswith("warn  camera cam") and "connection refused" in warn and "fix:" in warn


def test_wrong_broker_password_is_a_warning_naming_it(site):
    code, lines = doctor(site(password="wrong"))
    (warn,) = not_clock(lines["warn"])
    assert code == 2 and lines["FAIL"] == []
    assert "mqtt as box" in warn and "login refused" in warn and "password" in warn.split("fix:")[1]
    assert "wrong" not in warn  # the password itself never appears


def test_missing_model_would_stop_the_agent(site, tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    code, lines = doctor(site(), EDGE_AGENT_MODELS=str(empty))
    (fail,) = lines["FAIL"]
    assert code == 1 and "model nanodet-g-416" in fail and "missing" in fail
    assert "edge-agent models fetch nanodet-g-416" in fail


def test_clock_against_the_broker_says_why_mosquitto_shows_no_offset(site):
    """mosquitto publishes its version and uptime in $SYS but no wall-clock time: the doctor says
    so, naming the broker, and times a round trip through it with the config's login."""
    code, lines = doctor(site())
    (line,) = [x for x in lines["ok"] + lines["warn"] if "clock:" in x and "broker" in x]
    assert line.startswith("ok") and "cannot be seen" in line and "mosquitto version 2." in line, line
    assert re.search(r"round trip \d+ ms", line), line
