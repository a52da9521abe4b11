"""PatrolMonitor rules on hand-placed people and printed badges: once per visit, rearm, expiry, cost."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.clock import parse_iso
from edge_agent.frames import Detections, Frame
from edge_agent.patrol.badge import encode, render
from edge_agent.patrol.checkin import PatrolMonitor
from edge_agent.patrol.points import badge_secret, load_patrol
from edge_agent.alarms.event import EventContext

POINTS = Path(__file__).resolve().parents[1] / "footage" / "patrol_points.yaml"
T0 = parse_iso("2026-06-01T08:00:00Z")
CTX = EventContext("footage-site", "box-1", "patrol-cam", "Europe/Amsterdam")


def events_of(m: PatrolMonitor, frame: Frame, tracked) -> list:
    """The events one frame raised (the monitor only makes them; delivery is elsewhere)."""
    return [o.event for o in m.process(frame, tracked)]


def monitor() -> PatrolMonitor:
    patrol = load_patrol(POINTS)
    return PatrolMonitor(CTX, patrol, badge_secret(patrol))


def frame(i: int, badge: int | None, site: str = "footage-site", secret: bytes = b"footage-badge-secret") -> Frame:
    img = np.full((360, 640, 3), 120, np.uint8)
    if badge is not None:
        card = cv2.resize(render(encode(secret, site, badge), 20), (90, 57), interpolation=cv2.INTER_AREA)
        img[150:207, 280:370] = card[:, :, None]
    return Frame("patrol-cam", i, i * 0.2, T0 + i * 0.2, img)


def person(track: int, x: float = 320.0) -> Detections:
    """A person whose feet (bottom centre) stand at (x, 340): inside PP001's area when x is mid-frame."""
    names = {"class_name": np.array(["person"], object)}
    return Detections([[x - 70, 110, x + 70, 340]], [0.9], [0], np.array([track]), names)


def test_one_checkin_per_visit_and_rearm_for_a_new_track():
    m = monitor()
    events = [e for i in range(10) for e in events_of(m, frame(i, 1011), person(1))]
    assert [(e.type, e.details["member"]) for e in events] == [("patrol_checkin", "A. Jansen")]
    reads = m.stats.reads
    assert reads == 1  # checked in: no more badge reading on this visit
    # The tracker lost and re-found the patroller (new id): within rearm_s it is the same check-in.
    assert [e for i in range(10, 15) for e in events_of(m, frame(i, 1011), person(2))] == []


def test_expired_and_foreign_badges_rejected_once():
    m = monitor()
    events = [e for i in range(5) for e in events_of(m, frame(i, 1012), person(1))]
    assert [(e.type, e.details["reason"], e.details["member"]) for e in events] == [
        ("patrol_badge_rejected", "expired", "B. de Vries")]
    m2 = monitor()
    events = [e for i in range(5) for e in events_of(m2, frame(i, 1011, "other-site", b"other"), person(1))]
    assert [(e.type, e.details["reason"], e.details["badge"]) for e in events] == [
        ("patrol_badge_rejected", "bad_signature", None)]


def test_no_reading_outside_the_area_or_without_people():
    m = monitor()
    for i in range(5):
        assert events_of(m, frame(i, 1011), person(1, x=60.0)) == []  # feet left of the area
        assert events_of(m, frame(i, 1011), Detections.empty()) == []
    assert m.stats.reads == 0 and m.stats.frames == 10


def test_presence_after_dwell_without_badge():
    m = monitor()
    events = [e for i in range(60) for e in events_of(m, frame(i, None), person(1))]  # 12 s
    assert [(e.type, e.media_time) for e in events] == [("patrol_presence", 10.0)]


def test_a_wall_clock_step_neither_fakes_a_dwell_nor_ends_a_visit():
    """Dwell and visit gaps ran on wall time: an NTP step forward mid-visit raised an instant
    patrol_presence, and a step back kept the visit open; media time never jumps."""
    def stepped(i: int, badge: int | None, step: float) -> Frame:
        f = frame(i, badge)
        f.wall_time += step
        return f

    m = monitor()
    events = [e for i in range(5) for e in events_of(m, frame(i, None), person(1))]
    events += [e for i in range(5, 10) for e in events_of(m, stepped(i, None, 3600.0), person(1))]  # +1 h
    assert events == []  # 2 s of dwell, not an hour
    m2 = monitor()
    assert [e.type for i in range(5) for e in events_of(m2, frame(i, 1011), person(1))] == ["patrol_checkin"]
    # the wall clock steps back 1 h: 5 s later (media time) a new visit is a new track's, still rearmed
    later = [e for i in range(30, 35) for e in events_of(m2, stepped(i, 1011, -3600.0), person(2))]
    assert later == [] and len(m2.visits) == 1  # the first visit ended after its gap despite the step
