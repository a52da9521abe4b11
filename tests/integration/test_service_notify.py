"""systemd's notify protocol end to end: the live agent (real RTSP camera, real detector) with a
NOTIFY_SOCKET of the test's own. READY arrives once cameras are started, WATCHDOG=1 keeps arriving
while the agent makes progress, stops when the detector thread hangs, resumes when it is freed.

The agent runs in this process (its main loop on the test's main thread, as `edge-agent run` does)
so that the test can hold the real detector's thread inside `detect`; SIGTERM ends it as systemd would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


class NotifySocket:
    """A datagram socket standing in for systemd's, recording every message with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            now = time.monotonic()
            self.messages.extend((now, line) for line in data.decode().splitlines())

    def lines(self, since: float = 0.0) -> list[str]:
        return [line for t, line in list(self.messages) if t >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class HangableDetector:
    """The real detector, with a gate the test can close to make the detector thread hang in `detect`."""

    def __init__(self, real) -> None:
        self.real = real
        self.gate = threading.Event()
        self.gate.set()

    def detect(self, images):
        self.gate.wait()
        return self.real.detect(images)

    def __getattr__(self, name):
        return getattr(self.real, name)


def analysed(health: Path) -> int:
    return json.loads(health.read_text())["cameras"]["cam"]["counters"]["frames_analysed"]


def test_ready_then_watchdog_only_while_the_detector_makes_progress(rtsp_server, small_clip, tmp_path, monkeypatch):
    from edge_agent.detect import registry
    from edge_agent.run import run_live

    srv = rtsp_server({"cam": small_clip}, loop=True)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "cam.yaml").write_text(yaml.safe_dump({"zones": []}))
    cfg = tmp_path / "cameras.yaml"
    cfg.write_text(yaml.safe_dump({
        "site": {"id": "s1"}, "device": {"id": "d1"},
        "detector": {"stall_s": 2},
        "mqtt": {"enabled": False}, "alarms": {"store_dir": str(tmp_path / "media")},
        "cameras": [{"id": "cam", "url": srv.url("cam"), "detect_fps": 5, "idle_interval_s": 0}],
    }))
    detectors: list[HangableDetector] = []
    real_load = registry.load_detector
    monkeypatch.setattr(registry, "load_detector", lambda *a, **k: detectors.append(HangableDetector(real_load(*a, **k))) or detectors[-1])
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    seen: dict[str, object] = {}

    def drive() -> None:
        try:
            seen["ready"] = wait_for(lambda: "READY=1" in notify.lines(), 30)
            seen["watchdog"] = wait_for(lambda: "WATCHDOG=1" in notify.lines(), 10)
            health = tmp_path / "health.json"
            seen["analysed"] = wait_for(lambda: health.exists() and analysed(health) > 0, 20)
            detectors[0].gate.clear()
            hung_at = time.monotonic()
            seen["stalled"] = wait_for(lambda: any(x.startswith("STATUS=stalled") for x in notify.lines(hung_at)), 15)
            quiet_from = time.monotonic()
            time.sleep(3)  # a window of the stalled state: no ping may arrive in it
            seen["pings_while_hung"] = notify.lines(quiet_from).count("WATCHDOG=1")
            detectors[0].gate.set()
            freed_at = time.monotonic()
            seen["resumed"] = wait_for(lambda: "WATCHDOG=1" in notify.lines(freed_at), 15)
        finally:
            detectors and detectors[0].gate.set()
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        code = run_live(str(cfg), duration=120, health_file=str(tmp_path / "health.json"))
    finally:
        driver.join(5)
        notify.close()
    assert code == 0
    assert seen.get("ready"), "READY=1 never arrived"
    assert seen.get("watchdog"), "no WATCHDOG=1 while healthy"
    assert seen.get("analysed"), "the detector analysed no frame before the hang"
    assert seen.get("stalled"), "the hung detector was not noticed"
    assert seen.get("pings_while_hung") == 0, "WATCHDOG=1 kept coming while the detector hung"
    assert seen.get("resumed"), "WATCHDOG=1 did not resume once the detector was freed"
    assert "STOPPING=1" in notify.lines()
