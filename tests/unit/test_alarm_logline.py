"""The agent's log line of an alarm: event id, score, site time, and where its media really went."""

from __future__ import annotations

import re
from pathlib import Path

from edge_agent.alarms.event import Event, MediaRef
from edge_agent.alarms.logline import alarm_line
from edge_agent.alarms.sink import FolderSink
from edge_agent.config.models import Mqtt, Outbox
from edge_agent.publish.publisher import MqttSink

START = Event(event_id="ev-1", phase="start", type="intrusion", site="s", device="d", camera="rail-east",
              zone="track-bed", label="person", score=0.8234, start="2026-06-01T20:03:11.000Z",
              time="2026-06-01T20:03:11.000Z")


def test_start_end_and_clip_lines_say_where_the_media_was_stored(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "media")
    shot = sink.emit(START.model_copy(update={"snapshot": MediaRef.for_bytes(b"jpeg", "image/jpeg")}),
                     {"snapshot": b"jpeg"})
    line = alarm_line(shot, "Europe/Oslo", str(tmp_path / "media"))
    assert line.startswith("camera rail-east: intrusion start in track-bed (person, score 0.82), event ev-1, "
                           "at 2026-06-01 22:03:11 +02:00; snapshot stored as ")
    stored = Path(re.search(r"stored as (\S+)$", line)[1])
    assert stored.read_bytes() == b"jpeg"  # the line leads to the file
    end = START.next_phase("end", end="2026-06-01T20:03:23.500Z", time="2026-06-01T20:03:23.500Z")
    assert "intrusion end in track-bed" in alarm_line(end, "Europe/Oslo") and \
        "at 2026-06-01 22:03:23 +02:00 after 12.5 s" in alarm_line(end, "Europe/Oslo")
    clip = sink.emit(START.next_phase("update", clip=MediaRef.for_bytes(b"mp4", "video/mp4", duration_s=8.2)),
                     {"clip": b"mp4"})
    clip_line = alarm_line(clip, "Europe/Oslo", str(tmp_path / "media"))
    assert "intrusion update" in clip_line and "clip (8.2 s) stored as" in clip_line
    assert Path(re.search(r"stored as (\S+)$", clip_line)[1]).read_bytes() == b"mp4"
    sink.close()


def test_with_mqtt_the_line_says_the_media_waits_in_the_outbox(tmp_path: Path) -> None:
    sink = MqttSink(Mqtt(outbox=Outbox(path=str(tmp_path / "o.sqlite"))), "s", "d")  # not started: no broker
    try:
        ev = sink.emit(START.model_copy(update={"snapshot": MediaRef.for_bytes(b"jpeg", "image/jpeg")}),
                       {"snapshot": b"jpeg"})
        line = alarm_line(ev, "UTC")
        assert "at 2026-06-01 20:03:11 +00:00" in line
        assert line.endswith(f"snapshot in the outbox for {ev.snapshot.topic}") and ev.snapshot.topic
        assert sink.outbox.pending_events() == 1 and sink.outbox.depth() >= 2  # event and snapshot are there
    finally:
        sink.outbox.close()
