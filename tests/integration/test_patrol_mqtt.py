"""Patrol over a real broker: retained per-point status, check-ins on `patrol`, overdue on `alarms`.

The whole box stage is built from a cameras.yaml (`PatrolStage.from_config`) with the real
MqttSink and outbox; the check-in comes from the rendered patrol_checkin clip through the real
detector and tracker.
"""

from __future__ import annotations

import shutil
from pathlib import Path


from edge_agent.clock import FakeClock, parse_iso
from edge_agent.config.loader import load_config
from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.registry import load_detector
from edge_agent.patrol.checkin import PatrolStage
from edge_agent.publish.publisher import MqttSink
from edge_agent.alarms.event import EventContext
from edge_agent.sources.file import FileSource
from edge_agent.sources.gate import sampled_frames
from edge_agent.alarms.delivery import Delivery
from edge_agent.track import Tracker
from tests.fixtures.mosquitto import Probe, mqtt_settings

FOOTAGE = Path(__file__).resolve().parents[1] / "footage"


def test_status_checkin_and_overdue_over_the_broker(mosquitto, tmp_path):
    shutil.copy(FOOTAGE / "patrol_points.yaml", tmp_path / "patrol_points.yaml")
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "patrol-cam.yaml").write_text("zones: []\n")
    (tmp_path / "cameras.yaml").write_text(
        "site: {id: footage-site, timezone: Europe/Amsterdam}\ndevice: {id: box-1}\npatrol: patrol_points.yaml\n"
        f"mqtt: {{port: {mosquitto.port}, topic_prefix: plant, outbox: {{path: {tmp_path / 'outbox.sqlite'}}}}}\n"
        f"cameras:\n  - {{id: patrol-cam, url: {FOOTAGE / 'patrol_checkin.mp4'}}}\n"
    )
    cfg = load_config(tmp_path / "cameras.yaml")
    clock = FakeClock(parse_iso("2026-06-01T08:00:00Z"))  # 10:00 local, inside 06:00-22:00
    sink = MqttSink(mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", topic_prefix="plant"),
                    cfg.site.id, cfg.device.id, clock).start()
    ctx = EventContext(cfg.site.id, cfg.device.id, "patrol-cam", cfg.site.timezone)
    stage = PatrolStage.from_config(cfg, clock, lambda point, body: sink.state.publish_retained(f"patrol/status/{point}", body),
                                    lambda cam: True, lambda cam: ctx, state_path=tmp_path / "patrol_state.json")
    delivery = Delivery(sink, clock, threaded=False)
    assert stage is not None and list(stage.monitors) == ["patrol-cam"]
    probe = Probe(mosquitto.port, "plant/footage-site/box-1/#")
    delivery.submit(stage.check())
    # A retained state still queued is replaced by a newer one (only the latest matters), so let
    # each state go out before the fake clock jumps hours ahead, as a real clock would.
    assert sink.wait_drained(10)
    for _ in range(5 * 60):  # five hours, a check a minute
        clock.advance(60)
        delivery.submit(stage.check())
    assert sink.wait_drained(10)
    detector = load_detector("yolov3-tiny", DetectorOptions())
    tracker = Tracker()
    events = []
    frames = sampled_frames(FileSource("patrol-cam", FOOTAGE / "patrol_checkin.mp4"), "patrol-cam", 5.0, clock.now())
    for frame in frames:
        tracked = tracker.update(detector.detect([frame.image])[0], frame.wall_time)
        made = stage.monitors["patrol-cam"].process(frame, tracked)
        delivery.submit(made)
        events += [o.event for o in made]
    assert sink.wait_drained(10)
    probe.stop()
    late = Probe(mosquitto.port, "plant/footage-site/box-1/patrol/status/#")  # sees retained messages only
    late.stop()
    sink.close(2)

    base = "plant/footage-site/box-1"
    alarms = probe.json(f"{base}/alarms")
    assert [(a["type"], a["phase"], a["details"]["point"]) for a in alarms] == [
        ("patrol_overdue", "start", "PP001"), ("patrol_overdue", "end", "PP001")]
    assert alarms[0]["start"] == "2026-06-01T12:00:00.000Z" and alarms[0]["details"]["reason"] == "not_visited"
    assert alarms[1]["details"]["end_reason"] == "checked_in" and alarms[1]["details"]["member"] == "A. Jansen"
    patrol = probe.json(f"{base}/patrol")
    assert [(p["type"], p["details"]["member"]) for p in patrol] == [("patrol_checkin", "A. Jansen")]
    assert patrol[0]["snapshot"]["topic"].startswith(f"{base}/patrol/")
    states = [s["state"] for s in probe.json(f"{base}/patrol/status/PP001")]
    assert states[0] == "ok" and "overdue" in states and states[-1] == "ok"
    (status,) = late.json(f"{base}/patrol/status/PP001")  # retained: the latest only
    assert status["last_member"] == "A. Jansen" and status["state"] == "ok" and status["camera_up"] is True
    assert [(e.type, e.phase) for e in events] == [("patrol_checkin", "start"), ("patrol_overdue", "end")]
