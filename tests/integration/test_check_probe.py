"""A camera login from the environment against the real RTSP server, and `check --probe` against
that server and a real mosquitto: what a technician sees before the agent runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import cv2

from tests.fixtures.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]
HARD = "p@ss#w:rd/1"  # the characters that break a URL written by hand
FPS, SIZE = 25, (320, 240)  # the small_clip fixture: encoded with GOP = fps


def edge_agent(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _site(tmp_path: Path, camera_url: str, broker_port: int, broker_user: str = "edge") -> Path:
    (tmp_path / "zones").mkdir(exist_ok=True)
    (tmp_path / "zones" / "gate.yaml").write_text(
        "zones:\n  - {name: night-yard, kind: restricted, polygon: [[0.1,0.1],[0.9,0.1],[0.9,0.9]], "
        "labels: [person], schedule: ['00:00-00:01']}\n"
        "  - {name: track, kind: rail, polygon: [[0.1,0.1],[0.9,0.1],[0.9,0.9]], labels: [person]}\n")
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(
        "site: {id: s1, timezone: Europe/Oslo}\ndevice: {id: d1}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker_port}, username: {broker_user}, password_env: T_MQTT_PW}}\n"
        f"cameras:\n  - {{id: gate, url: '{camera_url}', username: viewer, password_env: T_CAM_PW}}\n")
    return cfg


def test_render_with_camera_opens_the_stream_with_the_password_from_the_environment(
        tmp_path: Path, rtsp_server, small_clip: Path) -> None:
    srv = rtsp_server({"cam": small_clip}, loop=True, user="viewer", password=HARD)
    cfg = _site(tmp_path, f"rtsp://127.0.0.1:{srv.port}/cam", free_port())
    env = {"T_CAM_PW": HARD, "T_MQTT_PW": "x"}
    res = edge_agent("zones", "render", "--camera", "gate", "--config", str(cfg), "--out", "gate.png",
                     cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert cv2.imread(str(tmp_path / "gate.png")).shape[:2] == (SIZE[1], SIZE[0])
    wrong = edge_agent("zones", "render", "--camera", "gate", "--config", str(cfg), "--out", "w.png",
                       cwd=tmp_path, env={**env, "T_CAM_PW": HARD + "x"})
    assert wrong.returncode == 2 and "unauthorized" in wrong.stderr.lower()
    for out in (res, wrong):
        text = out.stdout + out.stderr
        assert HARD not in text and quote(HARD, safe="") not in text and "1x" not in text


def test_probe_reports_stream_and_broker_and_fails_on_what_does_not_answer(
        tmp_path: Path, rtsp_server, small_clip: Path, mosquitto_factory) -> None:
    srv = rtsp_server({"cam": small_clip}, loop=True, user="viewer", password=HARD)
    broker = mosquitto_factory(users={"edge": "broker-pw"})
    cfg = _site(tmp_path, f"rtsp://127.0.0.1:{srv.port}/cam", broker.port)
    env = {"T_CAM_PW": HARD, "T_MQTT_PW": "broker-pw"}

    good = edge_agent("check", "--probe", "--config", str(cfg), cwd=tmp_path, env=env)
    assert good.returncode == 0, good.stderr
    assert f"camera gate url rtsp://***@127.0.0.1:{srv.port}/cam: h264 {SIZE[0]}x{SIZE[1]}, {FPS} fps, " \
           f"GOP {FPS} frames (1.0 s)" in good.stdout
    assert f"broker 127.0.0.1:{broker.port}: login accepted (MQTT 5, no TLS, user edge)" in good.stdout
    oslo = datetime.now(ZoneInfo("Europe/Oslo"))  # the schedule is active one minute a day
    state = "active now" if (oslo.hour, oslo.minute) == (0, 0) else "INACTIVE now"
    assert f"night-yard (restricted, 00:00-00:01, {state})" in good.stdout
    assert "track (rail, always)" in good.stdout and oslo.isoformat()[-6:] in good.stdout  # site offset shown

    unknown = edge_agent("check", "--probe", "--camera", "nope", "--config", str(cfg), cwd=tmp_path, env=env)
    assert unknown.returncode == 2 and "no camera 'nope'; cameras: gate" in unknown.stderr

    bad_pw = edge_agent("check", "--probe", "--config", str(cfg), cwd=tmp_path,
                        env={"T_CAM_PW": "wrong", "T_MQTT_PW": "wrong"})
    assert bad_pw.returncode == 3
    assert "camera gate url" in bad_pw.stderr and "unauthorized (401)" in bad_pw.stderr
    assert "login refused" in bad_pw.stderr

    nothing = _site(tmp_path, f"rtsp://127.0.0.1:{free_port()}/cam", free_port())
    gone = edge_agent("check", "--probe", "--config", str(nothing), cwd=tmp_path, env=env)
    assert gone.returncode == 3
    assert "connection refused: nothing listens" in gone.stderr and "broker absent" in gone.stderr
    for out in (good, bad_pw, gone):
        assert HARD not in out.stdout + out.stderr and "broker-pw" not in out.stdout + out.stderr
