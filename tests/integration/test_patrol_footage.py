"""Patrol check-ins on rendered footage: real decoder, real detector, real tracker, real badges.

The clips come from scripts/footage/patrol.py (via scripts/make_footage.py); each one's
`.expected.yaml` says which patrol events the scene must give. Badges are 70 px across (read) or
30 px (too small to read, must not check in), blurred and H.264 CRF 28 as a camera sees them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from edge_agent.alarms.event import Event
from edge_agent.alarms.sink import FolderSink
from edge_agent.clock import FakeClock, parse_iso
from edge_agent.detect.common import DetectorOptions
from edge_agent.detect.registry import load_detector
from edge_agent.patrol.checkin import PatrolMonitor
from edge_agent.patrol.overdue import OverdueWatch
from edge_agent.patrol.points import badge_secret, load_patrol
from edge_agent.patrol.store import PatrolStore
from edge_agent.alarms.event import EventContext
from edge_agent.sources.file import FileSource
from edge_agent.sources.gate import sampled_frames
from edge_agent.alarms.delivery import Delivery
from edge_agent.track import Tracker

FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
CLIPS = ["patrol_checkin", "patrol_foreign", "patrol_presence", "patrol_small"]


@pytest.fixture(scope="module")
def detector():
    return load_detector("yolov3-tiny", DetectorOptions())


def run_clip(name: str, detector, out: Path, watch_store: Path | None = None):
    spec = yaml.safe_load((FOOTAGE / f"{name}.expected.yaml").read_text())
    patrol = load_patrol(FOOTAGE / spec["points"])
    start = parse_iso(spec["start"])
    ctx = EventContext(site=spec["site"], device="footage-box", camera=spec["camera"], timezone=spec["timezone"])
    sink = FolderSink(out)
    clock = FakeClock(start)
    watch = OverdueWatch(ctx, patrol, patrol.for_cameras([spec["camera"]]), clock, PatrolStore.open(watch_store))
    monitor = PatrolMonitor(ctx, patrol, badge_secret(patrol), watch)
    delivery = Delivery(sink, clock, threaded=False)
    tracker = Tracker()
    events: list[Event] = []
    batch = list(sampled_frames(FileSource(spec["camera"], FOOTAGE / spec["clip"]), spec["camera"], spec["fps"], start))
    for i in range(0, len(batch), 4):
        chunk = batch[i : i + 4]
        for frame, dets in zip(chunk, detector.detect([f.image for f in chunk])):
            tracked = tracker.update(dets, frame.wall_time)
            made = monitor.process(frame, tracked)
            delivery.submit(made)
            events += [o.event for o in made]
    delivery.close()
    sink.close()
    return spec, events, monitor


@pytest.mark.parametrize("name", CLIPS)
def test_patrol_clip_gives_expected_events(name, detector, tmp_path):
    spec, events, monitor = run_clip(name, detector, tmp_path)
    expect = spec["expect"]
    counts = Counter(e.type for e in events)
    for etype in ("patrol_checkin", "patrol_badge_rejected", "patrol_presence"):
        assert counts[etype] == expect[etype], (etype, [(e.type, e.details) for e in events])
    written = [Event.from_json(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e.event_id for e in written] == [e.event_id for e in events]
    for e in written:
        assert e.snapshot is not None and (tmp_path / e.snapshot.path).stat().st_size > 1000
        assert e.details["point"] == "PP001" and e.zone == "PP001"
    if expect["patrol_checkin"]:
        (checkin,) = [e for e in events if e.type == "patrol_checkin"]
        assert checkin.details["member"] == expect["member"]
        assert checkin.details["badge"] == expect["badge"]
        shown_from, shown_to = spec["truth"]["badge_shown"]
        assert shown_from <= checkin.media_time <= shown_to + 0.5
    if expect["patrol_badge_rejected"]:
        (rej,) = [e for e in events if e.type == "patrol_badge_rejected"]
        assert rej.details["reason"] == expect["reason"]
    if expect["patrol_presence"]:
        (pres,) = [e for e in events if e.type == "patrol_presence"]
        entered = spec["truth"]["in_area"][0]
        assert pres.details["dwell_s"] >= 10
        assert entered + 9.5 <= pres.media_time <= entered + 12  # presence_s is 10
    # Badges are searched only while someone stands in the area, never on every frame.
    assert monitor.stats.reads < monitor.stats.frames
