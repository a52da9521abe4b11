"""Nothing is lost when the broker goes away: the disk outbox, not paho's memory, carries alarms over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_agent.alarms.event import Event
from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import mqtt_settings, sample_event, sample_media

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "scripts" / "mqtt_agent_driver.py"
N = 20
OUTAGE_S = float(os.environ.get("EDGE_MQTT_OUTAGE_S", "1.5"))  # lengthen for a soak run


def ids(first: int, n: int) -> list[str]:
    return [Event.make_id("site1", "dev1", "cam1", i) for i in range(first, first + n)]


def primed_central(mosquitto, central_factory, tmp_path):
    """Central's persistent session exists on the broker before the outage begins."""
    cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite")
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    return cfg, central


def test_alarms_raised_during_outage_survive_a_new_client(mosquitto, central_factory, tmp_path):
    cfg, central = primed_central(mosquitto, central_factory, tmp_path)
    mosquitto.stop()
    first = MqttSink(cfg, "site1", "dev1").start()
    for i in range(N):
        first.emit(sample_event(i), {})
    # This client, and whatever paho held in memory, is gone before the broker returns.
    assert first.close(flush_timeout=0.3) is False
    mosquitto.start()
    second = MqttSink(cfg, "site1", "dev1").start()
    try:
        assert central.wait_complete(N, timeout=30), central.lines[-5:]
        assert second.wait_drained(5)
    finally:
        second.close(1)
    got = [e["event_id"] for e in central.events()]
    assert got == ids(0, N)  # exactly once after de-dup, in order


def test_outage_while_connected_then_reconnect_delivers_in_order(mosquitto, central_factory, tmp_path):
    cfg, central = primed_central(mosquitto, central_factory, tmp_path)
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        assert sink.link.connected.wait(10)
        sink.emit(sample_event(100), {})
        assert central.wait_complete(1, timeout=10)
        mosquitto.stop()
        for i in range(N):
            sink.emit(sample_event(i), {})
        time.sleep(OUTAGE_S)
        assert sink.outbox.pending_events() == N
        mosquitto.start()
        assert central.wait_complete(N + 1, timeout=30), central.lines[-5:]
        assert sink.wait_drained(5)
    finally:
        sink.close(1)
    got = [e["event_id"] for e in central.events()]
    assert got == [Event.make_id("site1", "dev1", "cam1", 100), *ids(0, N)]


def test_publisher_killed_with_sigkill_during_outage_delivers_after_restart(mosquitto, central_factory, tmp_path):
    cfg, central = primed_central(mosquitto, central_factory, tmp_path)
    mosquitto.stop()
    outbox = tmp_path / "agent-outbox.sqlite"
    jpeg = tmp_path / "snap.jpg"
    jpeg.write_bytes(sample_media(frames=2)["snapshot"])
    args = [sys.executable, str(DRIVER), "--port", str(mosquitto.port), "--outbox", str(outbox),
            "--snapshot", str(jpeg)]
    proc = subprocess.Popen([*args, "--count", str(N), "--linger", "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == f"EMITTED {N}"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    mosquitto.start()
    again = subprocess.run([*args, "--count", "0", "--linger", "30"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "DRAINED" in again.stdout, again.stderr[-2000:]
    assert central.wait_complete(N, timeout=20), central.lines[-5:]
    assert [e["event_id"] for e in central.events()] == ids(0, N)
    assert all((tmp_path / "central" / "media" / eid / "snapshot.jpg").read_bytes() == jpeg.read_bytes()
               for eid in ids(0, N))


def test_last_will_says_offline_when_the_publisher_dies(mosquitto, central_factory, tmp_path):
    import json

    cfg, central = primed_central(mosquitto, central_factory, tmp_path)
    args = [sys.executable, str(DRIVER), "--port", str(mosquitto.port), "--outbox", str(tmp_path / "o.sqlite")]
    proc = subprocess.Popen([*args, "--count", "1", "--linger", "10"], stdout=subprocess.PIPE, text=True)
    assert proc.wait(30) == 0  # delivered one alarm and left cleanly: retained `offline`
    assert central.wait_complete(1, timeout=10)
    proc = subprocess.Popen([*args, "--count", "0", "--hold", "60"], stdout=subprocess.PIPE, text=True)

    def state() -> str:
        raw = central.central.status.get("site1/dev1")
        return json.loads(raw)["state"] if raw else ""

    try:
        deadline = time.monotonic() + 10
        while state() != "online" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state() == "online"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5  # the socket closes with the process: the broker sends the will
        while state() != "offline" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state() == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_publisher_killed_mid_drain_resends_and_central_keeps_one_copy(mosquitto, central_factory, tmp_path):
    cfg, central = primed_central(mosquitto, central_factory, tmp_path)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(sample_media()["clip"])  # ~2 MB: 16 chunks each, so the kill lands mid-drain
    args = [sys.executable, str(DRIVER), "--port", str(mosquitto.port), "--outbox", str(tmp_path / "o.sqlite"),
            "--clip", str(clip)]
    proc = subprocess.Popen([*args, "--count", "5", "--linger", "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "EMITTED 5"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    again = subprocess.run([*args, "--count", "0", "--linger", "30"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    assert central.wait_complete(5, timeout=30), central.lines[-5:]
    assert [e["event_id"] for e in central.events()] == ids(0, 5)
    assert central.central.counts["corrupt"] == 0
    for eid in ids(0, 5):
        assert (tmp_path / "central" / "media" / eid / "clip.mp4").read_bytes() == clip.read_bytes()
