"""The whole path: recorded footage -> `edge-agent replay --mqtt` -> real mosquitto -> central command."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import av
import cv2
import numpy as np

from edge_agent.cli import main
from edge_agent.config.loader import load_config
from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import mqtt_settings

FOOTAGE = Path(__file__).parents[1] / "footage"


def test_replayed_alarm_reaches_central_through_a_256k_broker(mosquitto_factory, central_factory, tmp_path):
    broker = mosquitto_factory(message_size_limit=256 * 1024)
    conf = tmp_path / "cameras.yaml"
    conf.write_text(
        "site: {id: shore-07, timezone: Europe/Amsterdam}\n"
        "device: {id: box-01}\n"
        f"mqtt:\n  port: {broker.port}\n  topic_prefix: city\n  chunk_size: 65536\n"
        f"  outbox: {{path: {tmp_path / 'outbox.sqlite'}}}\n"
        "cameras:\n"
        f"  - {{id: rail-east, url: {FOOTAGE / 'rail_intrusion.mp4'}, zones: {FOOTAGE / 'zones/rail_intrusion.yaml'},"
        " location: {lat: 51.92, lon: 4.48}}\n"
    )
    central = central_factory(mqtt_settings(broker, tmp_path / "central-outbox.sqlite", topic_prefix="city"),
                              tmp_path / "central")
    central.wait_connected()
    # the live agent of this box runs on the same config: the replay must neither take its client
    # id (the broker would drop one of them at each connect, for ever) nor its outbox
    live = MqttSink.from_config(load_config(str(conf))).start()
    assert live.link.connected.wait(10)

    done = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "replay", str(FOOTAGE / "rail_intrusion.mp4"),
         "--zones", str(FOOTAGE / "zones/rail_intrusion.yaml"), "--config", str(conf), "--camera", "rail-east",
         "--out", str(tmp_path / "replay"), "--start", "2026-06-01T10:00:00Z", "--mqtt", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert central.wait_complete(3, timeout=30), central.lines
    assert live.link.connected.is_set() and live.link.connects == 1, live.stats()
    assert live.outbox.counters().get("delivered", 0) == 0  # its outbox sent nothing of the replay's
    live.close(1)

    events = central.events()
    assert sorted((e["type"], e["phase"]) for e in events) == [
        ("intrusion", "end"), ("intrusion", "start"), ("intrusion", "update")]
    start = next(e for e in events if e["phase"] == "start")
    assert (start["site"], start["device"], start["camera"], start["zone"], start["label"]) == \
        ("shore-07", "box-01", "rail-east", "track-bed", "person")
    assert start["location"] == {"lat": 51.92, "lon": 4.48}
    assert start["snapshot"]["topic"].startswith("city/shore-07/box-01/alarms/")

    media = tmp_path / "central" / "media" / start["event_id"]
    jpeg = (media / "snapshot.jpg").read_bytes()
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is not None
    assert hashlib.sha256(jpeg).hexdigest() == start["snapshot"]["sha256"]

    update = next(e for e in events if e["phase"] == "update")
    clip = (media / "clip.mp4").read_bytes()
    assert len(clip) == update["clip"]["size"] > 256 * 1024  # larger than the broker takes in one message
    assert hashlib.sha256(clip).hexdigest() == update["clip"]["sha256"]
    with av.open(io.BytesIO(clip)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 30

    # what central received is what the replay wrote locally
    local = [json.loads(x) for x in (tmp_path / "replay" / "events.jsonl").read_text().splitlines()]
    assert {(e["event_id"], e["phase"]) for e in local} == {(e["event_id"], e["phase"]) for e in events}


def test_replay_mqtt_with_a_bad_zone_file_fails_clearly_and_keeps_nothing_open(mosquitto, tmp_path):
    """The MQTT sink starts before the zones are read: a bad zone file must still close it (no threads left)."""
    conf = tmp_path / "cameras.yaml"
    conf.write_text(f"site: {{id: s}}\ndevice: {{id: d}}\nmqtt:\n  port: {mosquitto.port}\n"
                    f"  outbox: {{path: {tmp_path / 'outbox.sqlite'}}}\n")
    bad = tmp_path / "zones.yaml"
    bad.write_text("zones:\n  - name: x\n    kind: rail\n    polygon: [[0, 0], [1, 0], [2, 1]]\n    labels: [person]\n")
    args = ["replay", str(FOOTAGE / "rail_intrusion.mp4"), "--zones", str(bad), "--config", str(conf),
            "--out", str(tmp_path / "out"), "--mqtt", "--no-progress"]
    before = {t for t in threading.enumerate() if t.name.startswith("mqtt-")}
    assert main(args) == 2  # the CLI's exit code for a user error, printed without a traceback
    left = [t for t in threading.enumerate() if t.name.startswith("mqtt-") and t not in before and t.is_alive()]
    assert not left, left
