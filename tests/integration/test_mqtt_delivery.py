"""Alarms with real media reach central command through a real mosquitto."""

from __future__ import annotations

import hashlib
import json
import time

import av
import cv2
import numpy as np

from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import mqtt_settings, sample_event, sample_media


def test_alarm_with_jpeg_and_mp4_reaches_central_through_a_256k_limit(mosquitto_factory, central_factory, tmp_path):
    broker = mosquitto_factory(message_size_limit=256 * 1024)
    media = sample_media()
    assert len(media["clip"]) > 256 * 1024, "the clip must need chunking"
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", chunk_size=64 * 1024)
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        sent = sink.emit(sample_event(1), media)
        assert sent.clip is not None and sent.clip.topic == f"edge/site1/dev1/alarms/{sent.event_id}/clip"
        assert central.wait_complete(1, timeout=20), central.lines
        assert sink.wait_drained(5)
    finally:
        sink.close(1)
    events = central.events()
    assert [e["event_id"] for e in events] == [sent.event_id]
    assert events[0]["snapshot"]["sha256"] == hashlib.sha256(media["snapshot"]).hexdigest()
    folder = tmp_path / "central" / "media" / sent.event_id
    image = cv2.imdecode(np.frombuffer((folder / "snapshot.jpg").read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (240, 320, 3)
    clip = (folder / "clip.mp4").read_bytes()
    assert hashlib.sha256(clip).hexdigest() == hashlib.sha256(media["clip"]).hexdigest()
    with av.open(str(folder / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 30


def test_status_is_retained_online_then_offline_and_patrol_goes_to_patrol(mosquitto, central_factory, tmp_path):
    cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite")
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    ev = sample_event(2, type_="patrol_checkin")
    sink.emit(ev, {})
    sink.state.publish_retained("patrol/status/gate-3", {"state": "ok"})
    assert central.wait_complete(1, timeout=10)
    assert sink.wait_drained(5)
    sink.state.publish_health({"cameras": {"cam1": "ok"}, "mqtt": sink.stats()})  # as run.py builds it
    deadline = time.monotonic() + 5
    while "site1/dev1" not in central.central.health and time.monotonic() < deadline:
        time.sleep(0.05)
    health = json.loads(central.central.health["site1/dev1"])
    assert health["cameras"] == {"cam1": "ok"} and health["mqtt"]["connected"] is True
    assert health["mqtt"]["outbox_depth"] == 0 and health["mqtt"]["dropped"] == {"clip": 0, "snapshot": 0}
    status = json.loads(central.central.status["site1/dev1"])
    assert status["state"] == "online" and status["version"]
    sink.close(1)
    deadline = time.monotonic() + 5
    while json.loads(central.central.status["site1/dev1"])["state"] != "offline" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(central.central.status["site1/dev1"])["state"] == "offline"
    assert central.central.streams[ev.event_id] == "patrol"
    assert json.loads(central.central.patrol_status["site1/dev1/gate-3"]) == {"state": "ok"}


def test_media_quota_drops_oldest_clips_and_central_is_told(mosquitto, central_factory, tmp_path):
    cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", media_quota_mb=5.0)
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    mosquitto.stop()
    media = sample_media()  # ~2 MB of clip each: three do not fit in 5 MB
    sink = MqttSink(cfg, "site1", "dev1").start()
    sent = [sink.emit(sample_event(i), media).event_id for i in range(3)]
    stats = sink.stats()
    assert stats["dropped"]["clip"] >= 1 and stats["dropped"]["snapshot"] == 0
    assert stats["media_bytes"] <= stats["media_quota_bytes"]
    mosquitto.start()
    try:
        # 3 alarms + one `update` per event whose clip was dropped; all complete
        assert central.wait_complete(3 + stats["dropped"]["clip"], timeout=30), central.lines[-5:]
    finally:
        sink.close(1)
    events = central.events()
    assert [e["event_id"] for e in events if e["phase"] == "start"] == sent
    drops = [e for e in events if e["phase"] == "update"]
    assert drops and all(e["details"]["dropped"] == ["clip"] and "clip" not in e for e in drops)
    assert drops[0]["event_id"] == sent[0]  # the oldest clip went first
    assert (tmp_path / "central" / "media" / sent[-1] / "clip.mp4").is_file()
    for eid in sent:
        assert (tmp_path / "central" / "media" / eid / "snapshot.jpg").is_file()


def test_mqtt_311_persistent_session_delivers_too(mosquitto, central_factory, tmp_path):
    cfg = mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", protocol="3.1.1")
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    central.link.stop(graceful=False)  # central offline: its 3.1.1 session must queue for it
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        sent = [sink.emit(sample_event(i), {}).event_id for i in range(5)]
        assert sink.wait_drained(10)
    finally:
        sink.close(1)
    again = central_factory(cfg, tmp_path / "central2")
    assert again.wait_complete(5, timeout=15), again.lines
    assert [e["event_id"] for e in again.events()] == sent


def test_command_snapshot_is_chunked_and_reassembled_by_central(mosquitto_factory, central_factory, tmp_path):
    """The `snapshot` command's JPEG travels like alarm media: it was one retained message, which a
    broker with a smaller limit than the JPEG refused, on a topic central never subscribed to."""
    broker = mosquitto_factory(message_size_limit=64 * 1024)
    rng = np.random.default_rng(3)
    noisy = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)  # incompressible: a JPEG over 64 KB
    jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert len(jpeg) > 64 * 1024
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", chunk_size=32 * 1024)
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        topic = sink.state.publish_snapshot("snap-1", jpeg)
        assert topic == "edge/site1/dev1/snapshots/snap-1/snapshot"
        path = tmp_path / "central" / "media" / "snap-1" / "snapshot.jpg"
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.exists(), central.lines
        assert sink.wait_drained(5)
        assert sink.stats()["rejected"] == {"clip": 0, "snapshot": 0}
    finally:
        sink.close(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(jpeg).hexdigest()
