"""Directional line crossing: sides as drawn, hysteresis, a finite segment, once per crossing."""

from __future__ import annotations

from edge_agent.config.models import Line, ZoneFile
from edge_agent.rules.engine import RuleEngine
from edge_agent.rules.lines import LEFT, NONE, RIGHT, LineGeometry
from tests.fixtures.rules import CTX, T0, dets, every, obj, run, summary

# Drawn bottom to top: stand on A, look at B (up the picture): the left of the picture is on the left.
UP = [(0.5, 0.9), (0.5, 0.1)]


def line(**kw) -> Line:
    base = dict(name="gate", points=UP, labels=["person"])
    base.update(kw)
    return Line(**base)


def engine(*lines: Line) -> RuleEngine:
    return RuleEngine(ZoneFile(lines=list(lines)), CTX)


def walk(x0: float, x1: float, step: float = 40.0, t0: float = 0.0, tid: int = 1, y: float = 500.0, **kw):
    """Frames 0.2 s apart, the anchor moving `step` px per frame from x0 towards x1 (1000 px wide)."""
    n = int(abs(x1 - x0) // step)
    sign = 1.0 if x1 > x0 else -1.0
    return [(round(t0 + k * 0.2, 6), [obj(tid, x=x0 + sign * step * k, y=y, **kw)]) for k in range(n + 1)]


def crossings(events):
    return [(sec, ev.phase, ev.details["direction"]) for sec, ev in events]


def test_left_and_right_are_as_the_picture_is_seen():
    up = LineGeometry(line())
    assert up.side((0.2, 0.5), 1.0) == LEFT and up.side((0.8, 0.5), 1.0) == RIGHT
    assert up.side((0.51, 0.5), 1.0) == NONE  # within the hysteresis (0.02 of the width)
    rightwards = LineGeometry(line(points=[(0.1, 0.5), (0.9, 0.5)]))  # drawn left to right
    assert rightwards.side((0.5, 0.2), 1.0) == LEFT and rightwards.side((0.5, 0.8), 1.0) == RIGHT
    downwards = LineGeometry(line(points=[(0.5, 0.1), (0.5, 0.9)]))
    assert downwards.side((0.8, 0.5), 1.0) == LEFT


def test_a_crossing_from_left_to_right_is_in_with_an_immediate_end():
    # x = 210, 250, ... 490 (in the band from 480), 530 at 1.6 s: 20 px past the line on the right
    events = run(engine(line(direction="in")), walk(210.0, 800.0))
    assert summary(events) == [(1.6, "line_crossed", "start", "gate", 1), (1.6, "line_crossed", "end", "gate", 1)]
    start, end = events[0][1], events[1][1]
    assert start.zone_kind == "line" and start.details == {"direction": "in"} and start.label == "person"
    assert end.event_id == start.event_id and end.end == start.start and end.details["direction"] == "in"
    assert start.bbox == [0.51, 0.3, 0.55, 0.5]


def test_direction_setting_selects_crossings():
    there_and_back = walk(210.0, 800.0) + walk(800.0, 200.0, t0=3.2)
    assert crossings(run(engine(line(direction="both")), there_and_back)) == [
        (1.6, "start", "in"), (1.6, "end", "in"), (4.8, "start", "out"), (4.8, "end", "out")]
    assert crossings(run(engine(line(direction="in")), there_and_back)) == [(1.6, "start", "in"), (1.6, "end", "in")]
    assert crossings(run(engine(line(direction="out")), walk(210.0, 800.0))) == []


def test_once_per_crossing_however_long_the_track_stays():
    script = walk(210.0, 800.0) + every(0.2, 3.2, 60.0, obj(1, x=800.0))
    assert len(run(engine(line()), script)) == 2  # one start, one end


def test_jitter_on_the_line_never_counts():
    jitter = [(round(k * 0.2, 6), [obj(1, x=490.0 if k % 2 else 512.0)]) for k in range(100)]  # +-0.012 width
    assert run(engine(line()), jitter) == []
    assert len(run(engine(line(hysteresis=0.005)), jitter)) > 10  # with too little hysteresis it would


def test_a_track_that_turns_back_before_the_hysteresis_distance_does_not_count():
    script = walk(210.0, 490.0) + [(1.6, [obj(1, x=515.0)]), (1.8, [obj(1, x=505.0)])] + walk(490.0, 200.0, t0=2.0)
    assert run(engine(line()), script) == []
    assert crossings(run(engine(line(hysteresis=0.012)), script)) == [
        (1.6, "start", "in"), (1.6, "end", "in"), (2.2, "start", "out"), (2.2, "end", "out")]


def test_only_the_segment_counts_not_its_extension():
    assert run(engine(line()), walk(210.0, 800.0, y=950.0)) == []  # past B's end (y 0.9)
    assert len(run(engine(line()), walk(210.0, 800.0, y=880.0))) == 2


def test_hysteresis_is_a_fraction_of_the_frame_width_on_a_wide_frame():
    # A horizontal line at y = 540 px on 1920x1080, drawn left to right: "in" is downwards.
    eng = engine(line(points=[(0.1, 0.5), (0.9, 0.5)], direction="in"))
    size = (1920, 1080)

    def step(sec: float, y: float):
        return eng.step(dets((1, [940.0, y - 200.0, 980.0, y], 0.9, "person")), size, T0 + sec, sec)

    # 30 px below the line: past 2 % of the height (21.6 px), not of the width (38.4 px)
    got = [ev for k, y in enumerate([300.0, 400.0, 500.0, 570.0, 500.0, 400.0]) for ev in step(k * 0.2, y)]
    assert got == []
    got = [ev.phase for k, y in enumerate([400.0, 500.0, 590.0], start=10) for ev in step(k * 0.2, y)]
    assert got == ["start", "end"]


def test_labels_enabled_and_the_zone_command():
    assert run(engine(line()), walk(210.0, 800.0, label="boat")) == []
    off = engine(line(enabled=False))
    assert run(off, walk(210.0, 800.0)) == []
    assert off.set_zone_enabled("gate", True)
    assert len(run(off, walk(210.0, 800.0, t0=10.0, tid=2))) == 2


def test_a_mask_hides_a_crossing_from_the_line():
    # box centres at y = 400 lie in the mask band; the feet (y = 500) do not matter to a mask
    band = [(0.0, 0.35), (1.0, 0.35), (1.0, 0.45), (0.0, 0.45)]
    rules = ZoneFile(lines=[line()], masks=[band])
    assert run(RuleEngine(rules, CTX), walk(210.0, 800.0)) == []
    assert len(run(RuleEngine(rules, CTX), walk(210.0, 800.0, y=700.0))) == 2  # centres at y 600


def test_a_line_outside_its_schedule_is_disarmed():
    # T0 is 00:00 UTC (the context's time zone): armed 23:00-01:00, not 01:00-02:00
    assert len(run(engine(line(schedule=["23:00-01:00"])), walk(210.0, 800.0))) == 2
    assert run(engine(line(schedule=["01:00-02:00"])), walk(210.0, 800.0)) == []


def test_a_young_tracks_crossing_waits_for_its_scores():
    # 3 of the last 5 detections must reach min_score: the 2-detection track waits one frame
    script = [(0.0, [obj(1, x=470.0)]), (0.2, [obj(1, x=530.0)]), (0.4, [obj(1, x=560.0)])]
    assert crossings(run(engine(line()), script)) == [(0.4, "start", "in"), (0.4, "end", "in")]
    back = [(0.0, [obj(1, x=470.0)]), (0.2, [obj(1, x=530.0)]), (0.4, [obj(1, x=470.0)]), (0.6, [obj(1, x=460.0)])]
    assert run(engine(line(direction="in")), back) == []  # crossing back cancels the waiting one
