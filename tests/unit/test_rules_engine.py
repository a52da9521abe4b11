"""The alarm engine on scripted, already-tracked detections and times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge_agent.alarms.event import Event
from edge_agent.clock import iso_utc
from edge_agent.frames import Detections
from edge_agent.alarms.event import EventContext
from edge_agent.rules.engine import EngineState, RuleEngine, evaluate
from tests.fixtures.rules import CTX, IN, OUT, SIZE, T0, dets, every, obj, run, summary, warmed, zone

def test_intrusion_starts_exactly_at_dwell_and_carries_the_facts():
    eng = RuleEngine([zone()], CTX)
    events = run(eng, every(0.2, 0.0, 1.4, obj(7, score=0.6)))
    assert summary(events) == [(1.0, "intrusion", "start", "rail", 7)]
    ev = events[0][1]
    assert ev.start == ev.time == iso_utc(T0 + 1.0)
    assert ev.details == {"entered": iso_utc(T0), "entered_media_time": 0.0}
    assert ev.media_time == 1.0 and ev.zone_kind == "rail" and ev.label == "person"
    assert ev.bbox == [0.18, 0.3, 0.22, 0.5]
    assert ev.location is not None and ev.location.lat == 59.9
    assert ev.event_id == Event.make_id("s1", "d1", "cam1", "rail", "intrusion", 7, "0.000", "")


def test_score_is_the_best_seen_during_the_dwell():
    eng = RuleEngine([zone()], CTX)
    script = [(0.0, [obj(1, score=0.5)]), (0.5, [obj(1, score=0.8)]), (1.0, [obj(1, score=0.6)])]
    (_, ev), = run(eng, script)
    assert ev.score == pytest.approx(0.8)


def test_gap_within_grace_keeps_the_dwell_and_beyond_resets_it():
    eng = RuleEngine([zone(dwell_s=3.0)], CTX, absent_grace_s=2.0)
    # seen 0..1, missing 1..2.5 (1.5 s gap), seen again: the dwell still counts from 0
    script = every(0.5, 0.0, 1.0, obj(1)) + every(0.5, 2.5, 3.0, obj(1))
    assert summary(run(eng, script)) == [(3.0, "intrusion", "start", "rail", 1)]

    eng = RuleEngine([zone(dwell_s=3.0)], CTX, absent_grace_s=2.0)
    # missing in the frames 1.5..3.5 (2.5 s): the dwell starts again at 4.0, alarm at 7.0
    script = every(0.5, 0.0, 1.0, obj(1)) + every(0.5, 1.5, 3.5) + every(0.5, 4.0, 7.5, obj(1))
    assert summary(run(eng, script)) == [(7.0, "intrusion", "start", "rail", 1)]


def test_no_frames_is_no_evidence_of_absence():
    # A motion-gated or slow camera analyses a frame every 5 s: the visit goes on.
    eng = RuleEngine([zone(dwell_s=8.0)], CTX, absent_grace_s=2.0)
    assert summary(run(eng, every(5.0, 0.0, 10.0, obj(1)))) == [(10.0, "intrusion", "start", "rail", 1)]


def test_brief_step_outside_keeps_the_dwell():
    eng = RuleEngine([zone(dwell_s=2.0)], CTX, leave_grace_s=1.0)
    script = [(0.0, [obj(1)]), (0.5, [obj(1, x=OUT)]), (1.0, [obj(1)]), (2.0, [obj(1)])]
    assert summary(run(eng, script)) == [(2.0, "intrusion", "start", "rail", 1)]


def test_one_alarm_per_track_and_end_on_leave_with_the_same_id():
    eng = RuleEngine([zone()], CTX)
    script = every(0.5, 0.0, 5.0, obj(1)) + every(0.5, 5.5, 7.0, obj(1, x=OUT))
    events = run(eng, script)
    # left at 5.5; outside for more than 1 s at 7.0 (6.5 - 5.0 = 1.5 > 1 already at 6.5)
    assert summary(events) == [(1.0, "intrusion", "start", "rail", 1), (6.5, "intrusion", "end", "rail", 1)]
    start, end = events[0][1], events[1][1]
    assert end.event_id == start.event_id
    assert end.end == iso_utc(T0 + 6.5) and end.start == start.start
    assert end.details["end_reason"] == "left" and end.details["last_inside"] == iso_utc(T0 + 5.0)


def test_end_when_lost():
    eng = RuleEngine([zone()], CTX, absent_grace_s=2.0)
    script = every(0.5, 0.0, 2.0, obj(1)) + every(0.5, 2.5, 5.0)
    events = run(eng, script)
    assert summary(events) == [(1.0, "intrusion", "start", "rail", 1), (4.5, "intrusion", "end", "rail", 1)]
    assert events[1][1].details["end_reason"] == "lost"
    assert eng.active_tracks() == set()


def test_reentry_within_cooldown_does_not_alarm_but_after_cooldown_does():
    eng = RuleEngine([zone(cooldown_s=10.0)], CTX)
    script = (
        every(0.5, 0.0, 2.0, obj(1))  # alarm at 1.0
        + every(0.5, 2.5, 4.0, obj(1, x=OUT))  # end at 3.5
        + every(0.5, 5.0, 8.0, obj(1))  # back within cooldown (ends 13.5): no alarm
        + every(0.5, 8.5, 15.0, obj(1, x=OUT))  # away again past 13.5
        + every(0.5, 15.5, 17.0, obj(1))  # back after cooldown: new alarm at 16.5
    )
    events = run(eng, script)
    assert summary(events) == [
        (1.0, "intrusion", "start", "rail", 1),
        (3.5, "intrusion", "end", "rail", 1),
        (16.5, "intrusion", "start", "rail", 1),
    ]
    assert events[2][1].event_id != events[0][1].event_id
    assert events[2][1].details["entered_media_time"] == 15.5


def test_staying_in_past_the_cooldown_alarms_then():
    eng = RuleEngine([zone(cooldown_s=5.0)], CTX)
    script = every(0.5, 0.0, 1.0, obj(1)) + every(0.5, 1.5, 3.0, obj(1, x=OUT)) + every(0.5, 3.5, 9.0, obj(1))
    assert summary(run(eng, script)) == [
        (1.0, "intrusion", "start", "rail", 1),
        (2.5, "intrusion", "end", "rail", 1),
        (7.5, "intrusion", "start", "rail", 1),  # cooldown over at 2.5 + 5
    ]


def test_filters_labels_score_size():
    eng = RuleEngine([zone(labels=["person"], min_score=0.5, min_size=0.1)], CTX)
    script = every(0.5, 0.0, 3.0, obj(1, label="car"), obj(2, score=0.49), obj(3, h=99.0), obj(4, score=0.5, h=100.0))
    assert summary(run(eng, script)) == [(1.0, "intrusion", "start", "rail", 4)]


def test_exclusion_polygon_and_anchor():
    platform = [(0.0, 0.0), (0.2, 0.0), (0.2, 1.0), (0.0, 1.0)]
    eng = RuleEngine([zone(exclude=[platform])], CTX)
    assert run(eng, every(0.5, 0.0, 3.0, obj(1, x=100.0))) == []
    # top-centre anchor: a box whose feet are below a zone band but whose head is in it
    band = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.4), (0.0, 0.4)]
    feet = RuleEngine([zone(polygon=band)], CTX)
    head = RuleEngine([zone(polygon=band, anchor="top_center")], CTX)
    script = every(0.5, 0.0, 1.0, obj(1, y=500.0, h=200.0))
    assert run(feet, script) == []
    assert summary(run(head, script)) == [(1.0, "intrusion", "start", "rail", 1)]


def test_disabled_zone_and_runtime_toggle():
    eng = RuleEngine([zone(enabled=False)], CTX)
    assert run(eng, every(0.5, 0.0, 3.0, obj(1))) == []
    eng = RuleEngine([zone()], CTX)
    events = run(eng, every(0.5, 0.0, 2.0, obj(1)))
    assert eng.set_zone_enabled("rail", False) and not eng.set_zone_enabled("nope", False)
    events += run(eng, every(0.5, 2.5, 4.0, obj(1)))
    assert summary(events) == [(1.0, "intrusion", "start", "rail", 1), (2.5, "intrusion", "end", "rail", 1)]
    assert events[1][1].details["end_reason"] == "disabled"
    eng.set_zone_enabled("rail", True)  # re-armed: dwell counts from arming
    assert summary(run(eng, every(0.5, 4.5, 6.0, obj(1)))) == [(5.5, "intrusion", "start", "rail", 1)]


def test_schedule_across_midnight_in_oslo():
    tz = ZoneInfo("Europe/Oslo")
    ctx = EventContext(site="s1", device="d1", camera="cam1", timezone="Europe/Oslo")
    eng = RuleEngine([zone(schedule=["23:00-01:00"])], ctx)
    t0 = datetime(2026, 1, 10, 22, 59, 0, tzinfo=tz).timestamp()  # 21:59Z; in UTC it would be outside
    script = every(5.0, 0.0, 125 * 60.0, obj(1))  # 22:59 .. 01:04 local
    events = run(eng, script, t0=t0)
    assert summary(events) == [(65.0, "intrusion", "start", "rail", 1), (7260.0, "intrusion", "end", "rail", 1)]
    assert events[1][1].details["end_reason"] == "schedule"  # the window closed at 01:00 local
    assert events[1][1].end == iso_utc(datetime(2026, 1, 11, 1, 0, 0, tzinfo=tz).timestamp())


def test_stationary_not_before_stationary_s_and_not_while_moving():
    z = zone(name="quay", kind="water", labels=["boat"], dwell_s=0.0, stationary_s=10.0, stationary_radius=0.03)
    eng = RuleEngine([z], CTX)
    boat = obj(3, label="boat", score=0.3)
    drifting = [(i * 1.0, [obj(4, x=50.0 + 25.0 * i, label="boat")]) for i in range(16)]  # 2.5% width/s
    events = run(eng, [(sec, [boat] + objs) for sec, objs in drifting])
    assert summary(events) == [(10.0, "stationary", "start", "quay", 3)]
    assert events[0][1].details["settled_media_time"] == 0.0


def test_stationary_ends_when_it_moves_away_and_tolerates_jitter():
    z = zone(name="quay", kind="water", labels=["boat"], dwell_s=0.0, stationary_s=5.0, cooldown_s=0.0)
    eng = RuleEngine([z], CTX, leave_grace_s=1.0)
    jitter = [(float(i), [obj(3, x=IN + (10.0 if i % 2 else -10.0), label="boat")]) for i in range(8)]
    away = [(8.0 + i, [obj(3, x=IN + 100.0, label="boat")]) for i in range(4)]
    events = run(eng, jitter + away)
    assert summary(events) == [(5.0, "stationary", "start", "quay", 3), (10.0, "stationary", "end", "quay", 3)]
    assert events[1][1].details["end_reason"] == "moved"
    assert 3 in eng.active_tracks()  # still inside the zone, settling anew


def test_stationary_zone_raises_no_intrusion():
    z = zone(name="quay", labels=["person"], dwell_s=1.0, stationary_s=30.0)
    eng = RuleEngine([z], CTX)
    assert run(eng, every(1.0, 0.0, 20.0, obj(1))) == []


def test_ordering_by_zone_then_track_and_stable_ids():
    zones = [zone(name="b_zone"), zone(name="a_zone", polygon=[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])]
    script = every(0.5, 0.0, 1.0, obj(9), obj(2), obj(5, x=OUT))

    def ids():
        return [(ev.zone, ev.track_id, ev.event_id) for _, ev in run(RuleEngine(zones, CTX), script)]

    first = ids()
    assert [(z, t) for z, t, _ in first] == [("b_zone", 2), ("b_zone", 9), ("a_zone", 2), ("a_zone", 5), ("a_zone", 9)]
    assert ids() == first  # replay gives the same ids
    other = RuleEngine(zones, EventContext(site="s1", device="d1", camera="cam1", run_id="boot-2"))
    assert {e.event_id for _, e in run(other, script)}.isdisjoint({i for _, _, i in first})


def test_evaluate_is_pure_and_close_ends_everything():
    # One detection is enough only with a median-score window of 1 (the default asks 3 of 5).
    instant = zone(dwell_s=0.0, track_score={"window": 1})
    state, _ = evaluate(EngineState.create([instant]), dets(), SIZE, T0 - 60.0, -60.0, CTX)
    d = dets(obj(1), obj(2))
    s1, ev1 = evaluate(state, d, SIZE, T0, 0.0, CTX)
    again, ev_again = evaluate(state, d, SIZE, T0, 0.0, CTX)
    assert [e.track_id for e in ev1] == [1, 2] and ev_again == ev1
    assert state.records == {} and state.tracks == {}  # the input state was not touched
    eng = warmed(RuleEngine([instant], CTX))
    eng.step(d, SIZE, T0, 0.0)
    ends = eng.close(T0 + 3.0, 3.0)
    assert [(e.phase, e.track_id, e.details["end_reason"]) for e in ends] == [("end", 1, "shutdown"), ("end", 2, "shutdown")]
    assert eng.close(T0 + 4.0, 4.0) == []


def test_untracked_rows_are_ignored_and_untracked_input_is_refused():
    eng = RuleEngine([zone(dwell_s=0.0)], CTX)
    assert run(eng, [(0.0, [obj(-1)])]) == []
    plain = dets(obj(1)).with_tracker_id(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tracked detections"):
        eng.step(plain, SIZE, T0, 0.0)
    with pytest.raises(ValueError, match="frame_size"):
        eng.step(dets(obj(1)), (0, 0), T0, 0.0)


def test_a_wall_clock_step_changes_no_duration():
    """Durations run on media time: NTP setting a box's clock after boot must not alarm or stall."""
    eng = warmed(RuleEngine([zone(dwell_s=3.0, cooldown_s=0.0)], CTX))
    forward = [(sec, [obj(1)]) for sec in (0.0, 0.5, 1.0)]
    events = [ev for sec, objs in forward for ev in eng.step(dets(*objs), SIZE, T0 + sec + (3600 if sec else 0), sec)]
    assert events == []  # one media second inside: the hour the clock jumped is not dwell
    more = [ev for sec in (1.5, 2.0, 2.5, 3.0) for ev in eng.step(dets(obj(1)), SIZE, T0 + 3600 + sec, sec)]
    assert [(e.phase, e.media_time) for e in more] == [("start", 3.0)]
    assert more[0].start == iso_utc(T0 + 3603.0)  # ...while the stamps follow the wall clock

    back = [ev for sec in (3.5, 4.0, 4.5, 5.0, 5.5, 6.0) for ev in eng.step(dets(), SIZE, T0 + sec - 7200, sec)]
    assert [(e.phase, e.details["end_reason"], e.media_time) for e in back] == [("end", "lost", 5.5)]


def test_tracks_and_alarms_survive_a_clock_step_in_the_live_pipeline():
    from edge_agent.config.models import Alarms
    from edge_agent.frames import Frame
    from edge_agent.pipeline import CameraPipeline

    pipe = CameraPipeline(CTX, [zone(dwell_s=2.0)], Alarms())
    warmed(pipe.engine)
    person = dets(obj(1)).with_tracker_id(None)  # type: ignore[arg-type]
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    got = []
    for k in range(30):  # 0.2 s apart; the wall clock steps back an hour after the first second
        media = k * 0.2
        wall = T0 + media - (3600 if media > 1.0 else 0)
        seen = person if k < 16 else Detections.empty()  # gone after 3.0 s
        got += [(o.event.phase, round(media, 1)) for o in pipe.process(Frame("cam1", k, media, wall, image), seen)]
    assert got == [("start", 2.0), ("end", 5.2)]
    assert pipe.tracker.tracks == {}  # the tracker's grace ran out on media time too


def test_a_zone_counts_detections_down_to_its_own_min_score_through_the_pipeline():
    """A boat the detector scores 0.35 all along, drifting, alarms in a zone with min_score 0.3: the
    tracker must not demand more than the zone does before it gives the boat a track. (It drifts:
    a newcomer scored under 0.4 that never moves is held, test_rules_filters.py.)"""
    from edge_agent.config.models import Alarms
    from edge_agent.frames import Frame
    from edge_agent.pipeline import CameraPipeline

    quay = zone(labels=["boat"], min_score=0.3)
    pipe = CameraPipeline(CTX, [quay], Alarms())
    warmed(pipe.engine)
    def boat(k: int):
        return dets(obj(1, x=IN + 15.0 * k, score=0.35, label="boat")).with_tracker_id(None)  # type: ignore[arg-type]

    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    got = [o.event.phase for k in range(10)
           for o in pipe.process(Frame("cam1", k, k * 0.2, T0 + k * 0.2, image), boat(k))]
    assert got == ["start"]
    weak = dets(obj(1, score=0.25, label="boat")).with_tracker_id(None)  # type: ignore[arg-type]
    pipe = CameraPipeline(CTX, [quay], Alarms())
    warmed(pipe.engine)
    assert [e for k in range(10) for e in pipe.process(Frame("cam1", k, k * 0.2, T0 + k * 0.2, image), weak)] == []


def test_new_rules_end_open_alarms_and_keep_what_the_camera_learned():
    """A zone file edited on site: the open alarm ends as `reloaded`, the new zone judges the next
    frames, and a person standing still at that moment is not taken for start-up background."""
    eng = RuleEngine([zone(dwell_s=1.0)], CTX)
    got = run(eng, every(0.5, 0.0, 2.0, obj(1)))
    assert [(e.phase, e.zone) for _, e in got] == [("start", "rail")]
    started = eng.state.started_media
    ends = eng.replace_rules([zone(name="rail-2", dwell_s=1.0)], T0 + 2.5, 2.5)
    assert [(e.phase, e.zone, e.details["end_reason"]) for e in ends] == [("end", "rail", "reloaded")]
    assert eng.state.started_media == started  # learning does not restart with the zones
    later = run(eng, every(0.5, 3.0, 5.0, obj(1)))  # the same person, standing still
    assert [(sec, e.phase, e.zone) for sec, e in later] == [(4.0, "start", "rail-2")]
