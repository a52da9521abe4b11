"""README "Setting up a site", followed step by step in an empty project folder, against a real RTSP
camera (GStreamer, with a login) and a real mosquitto (with users), with the real detector.

Each command run here is one the README shows, word for word (checked first), run in the project
folder as a technician would. The camera password holds `@ # :` and must never show in any output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import cv2
import pytest
import yaml

from tests.fixtures.waiting import wait_for
from tests.integration.test_live_agent import render_walk

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HARD = "p@ss#w:rd"
SECRETS = {"EDGE_CAM_QUAY_EAST": HARD, "EDGE_MQTT_PASSWORD": "device-pw", "EDGE_COMMAND_SECRET": "cmd-secret-1",
           "CENTRAL_PW": "central-pw"}
# The person in render_walk walks from the left into the right half and stays there.
TRACK = "zones:\n  - {name: track, kind: rail, polygon: [[0.5,0.3],[1.0,0.3],[1.0,1.0],[0.5,1.0]], " \
        "labels: [person], dwell_s: 1.0}\n"
NOWHERE = "zones:\n  - {name: far-corner, kind: restricted, polygon: [[0,0],[0.04,0],[0,0.04]], labels: [person]}\n"
COPY = "cp configs/examples/cameras.full.yaml configs/cameras.yaml"
RENDER = "edge-agent zones render --camera quay-east --out quay-east.png"
CHECK, PROBE, RUN = "edge-agent check", "edge-agent check --probe", "edge-agent run"
SNAPSHOT = "edge-agent cmd snapshot --camera quay-east --out snapshots"
CENTRAL = "edge-agent central --out central --username central --password-env CENTRAL_PW --replies --health"


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Setting up a site"):text.index("## Status")]


def _argv(command: str) -> list[str]:
    """`edge-agent X` as the package's own entry point, importing this checkout."""
    words = command.split()
    return [sys.executable, "-m", "edge_agent.cli", *words[1:]] if words[0] == "edge-agent" else words


class Shell:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.outputs: list[str] = []

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(_argv(command), cwd=self.project, env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        self.outputs.append(res.stdout + res.stderr)
        return res

    def start(self, command: str) -> Background:
        proc = subprocess.Popen(_argv(command), cwd=self.project, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        return Background(proc)


class Background:
    """A long-running command whose output is read as it comes."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")),
                                        daemon=True)
        self._reader.start()

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        return "".join(self.lines)


def _edit_config(path: Path, camera_url: str, broker_port: int) -> None:
    """The technician's edit of the copied example: this site's camera and broker."""
    cfg = yaml.safe_load(path.read_text())
    cam = cfg["cameras"][0]
    cam.update(url=camera_url, detect_fps=5)
    cam.pop("substream_url")  # this camera has one stream
    cfg["mqtt"]["port"] = broker_port
    cfg["mqtt"]["reconnect_max_s"] = 2
    cfg["mqtt"]["health_interval_s"] = 2
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_readme_site_setup_walkthrough(tmp_path: Path, rtsp_server, mosquitto_factory) -> None:
    section = _readme_section()
    for command in (COPY, RENDER, CHECK, PROBE, RUN, SNAPSHOT, CENTRAL):
        assert command in section, f"README no longer shows {command!r}; update this test with it"

    walk = render_walk(tmp_path / "walk.mp4")
    camera = rtsp_server({"quay": walk}, loop=True, user="viewer", password=HARD)
    broker = mosquitto_factory(users={"edge-01": SECRETS["EDGE_MQTT_PASSWORD"], "central": SECRETS["CENTRAL_PW"]})
    project = tmp_path / "site"
    (project / "configs" / "zones").mkdir(parents=True)
    shutil.copytree(ROOT / "configs" / "examples", project / "configs" / "examples")
    sh = Shell(project)

    # 1. copy the example, edit it; without the secrets in the environment check refuses
    assert subprocess.run(COPY, shell=True, cwd=project).returncode == 0
    cameras = project / "configs" / "cameras.yaml"
    _edit_config(cameras, f"rtsp://127.0.0.1:{camera.port}/quay", broker.port)
    (project / "configs" / "zones" / "example.yaml").write_text(NOWHERE)
    unset = sh.run(CHECK)
    assert unset.returncode == 2 and "EDGE_CAM_QUAY_EAST is not set" in unset.stderr
    sh.env.update(SECRETS)

    # 2. draw a zone and look at it over the camera's picture
    drawn = sh.run(RENDER)
    assert drawn.returncode == 0, drawn.stderr
    assert cv2.imread(str(project / "quay-east.png")) is not None

    # 3. check, probe
    checked = sh.run(CHECK)
    assert checked.returncode == 0, checked.stderr
    assert "far-corner (restricted, always)" in checked.stdout
    assert f"wait in {project / 'data' / 'outbox.sqlite'}" in checked.stdout  # data/, not configs/data/
    probed = sh.run(PROBE)
    assert probed.returncode == 0, probed.stderr
    assert "camera quay-east url rtsp://***@" in probed.stdout and ": h264 " in probed.stdout
    assert f"broker 127.0.0.1:{broker.port}: login accepted" in probed.stdout

    # 4. run, with central command listening under its own broker user
    central = sh.start(CENTRAL)
    agent = sh.start(RUN)
    try:
        events = project / "central" / "events.jsonl"

        def alarms(zone: str) -> list[dict]:
            lines = events.read_text().splitlines() if events.exists() else []
            return [e for e in map(json.loads, lines) if e.get("zone") == zone and e["phase"] == "start"]

        # 5. the zone changes while it runs: SIGHUP, and alarms come from the new zone
        assert wait_for(lambda: agent.said("running 1 camera(s)"), 90), agent.finish()[-3000:]
        zone_file = project / "configs" / "zones" / "example.yaml"
        zone_file.write_text(TRACK.replace("person", "persn"))  # a typing mistake is refused, the agent goes on
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: agent.said("not reloaded; the running config stays"), 60), agent.finish()[-3000:]
        assert agent.said("example.yaml:2: zones[0].labels[0]: 'persn'") and agent.proc.poll() is None
        zone_file.write_text(TRACK)
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: alarms("track"), 90), "no alarm from the reloaded zone:\n" + agent.finish()[-4000:]
        first = alarms("track")[0]
        assert first["type"] == "intrusion" and first["label"] == "person" and first["camera"] == "quay-east"

        # 6. a command through the broker, signed with the config's secret; the reply is printed
        snap = sh.run(SNAPSHOT, timeout=60)
        assert snap.returncode == 0, snap.stdout + snap.stderr
        reply = json.loads(snap.stdout[:snap.stdout.rindex("}") + 1])
        assert reply["ok"] and reply["result"]["camera"] == "quay-east"
        jpeg = project / "snapshots" / "media" / reply["result"]["snapshot_id"] / "snapshot.jpg"
        width, height = map(int, re.search(r": h264 (\d+)x(\d+)", probed.stdout).groups())
        assert cv2.imread(str(jpeg)).shape[:2] == (height, width)  # the camera's own frame, received whole
    finally:
        agent_log = agent.finish()
        central_log = central.finish()
    assert agent.proc.returncode == 0, agent_log[-3000:]
    assert "SIGHUP: reloading" in agent_log
    running = next(x for x in agent_log.splitlines() if "running 1 camera(s)" in x)
    offset = datetime.now(ZoneInfo("Europe/Oslo")).isoformat()[-6:]  # the example's site time zone
    assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d \{offset} INFO", running), running
    # the log line of the alarm names its event id, score and where its media went
    line = next(x for x in agent_log.splitlines() if f"event {first['event_id']}" in x and "start" in x)
    assert re.search(r"score \d\.\d\d", line) and "snapshot in the outbox for" in line
    assert f"REPLY {first['site']}/{first['device']}" in central_log and "HEALTH " in central_log
    for text in sh.outputs + [agent_log, central_log, events.read_text()]:
        assert HARD not in text and quote(HARD, safe="") not in text
