"""The false-alarm filters with their shipped defaults: size, aspect, masks, the median-score rule,
and the start-up background rule (a rock called "person" vs a person who stops still)."""

from __future__ import annotations

from edge_agent.config.models import Background, ZoneFile
from edge_agent.rules.engine import RuleEngine
from tests.fixtures.rules import CTX, IN, OUT, SIZE, T0, dets, every, obj, run, summary, zone

# the stacked rocks NanoDet calls "person" score 0.29-0.44 (README, "Alarm quality"): the top of that
ROCK = obj(1, x=300.0, y=700.0, score=0.44, h=120.0)


def starts(events):
    return [(sec, ev.track_id) for sec, ev in events if ev.phase == "start"]


def raw(engine: RuleEngine, script) -> list:
    """Like `run`, but from the camera's very first frame (no warm-up): what start-up looks like."""
    out = []
    for sec, objs in script:
        out += [(sec, ev) for ev in engine.step(dets(*objs), SIZE, T0 + sec, sec)]
    return out


def test_box_height_must_be_within_min_and_max_size_by_default():
    tiny, person = obj(1, h=5.0), obj(3, h=200.0)
    huge = (2, [100.0, 50.0, 400.0, 950.0], 0.9, "person")  # 0.9 of the frame height: on the lens
    assert starts(run(RuleEngine([zone()], CTX), every(0.2, 0.0, 3.0, tiny, huge, person))) == [(1.0, 3)]
    # the limits are the zone's: a zone for nearby objects may take the big box
    near = zone(max_size=0.95, min_size=0.3)
    assert starts(run(RuleEngine([near], CTX), every(0.2, 0.0, 3.0, tiny, huge, person))) == [(1.0, 2)]


def test_aspect_drops_slivers_by_default_and_takes_the_zones_range():
    wave = (1, [100.0, 480.0, 400.0, 500.0], 0.9, "person")  # 300 x 20: a wave crest, aspect 15
    pole = (2, [300.0, 100.0, 305.0, 600.0], 0.9, "person")  # 5 x 500: aspect 0.01
    lying = (3, [100.0, 700.0, 260.0, 760.0], 0.9, "person")  # 160 x 60: aspect 2.7
    standing = obj(4)  # 40 x 200: aspect 0.2
    script = every(0.2, 0.0, 3.0, wave, pole, lying, standing)
    assert starts(run(RuleEngine([zone()], CTX), script)) == [(1.0, 3), (1.0, 4)]
    upright = zone(aspect=(0.1, 1.0))
    assert starts(run(RuleEngine([upright], CTX), script)) == [(1.0, 4)]


def test_a_masked_detection_is_ignored_but_a_person_beside_the_mask_is_not():
    statue = [(0.05, 0.1), (0.35, 0.1), (0.35, 0.45), (0.05, 0.45)]  # box centres of (200, 300) lie in it
    on_it, beside = obj(1, x=200.0, y=400.0), obj(2, x=200.0, y=800.0)  # centres y 300 and 700
    rules = ZoneFile(zones=[zone()], masks=[statue])
    assert starts(run(RuleEngine(rules, CTX), every(0.2, 0.0, 3.0, on_it, beside))) == [(1.0, 2)]
    assert starts(run(RuleEngine([zone()], CTX), every(0.2, 0.0, 3.0, on_it, beside))) == [(1.0, 1), (1.0, 2)]


def test_median_rule_ignores_a_weak_track_with_lucky_frames():
    # A rock scored 0.2 (under min_score 0.3) with a lucky 0.9 every third frame: its presence
    # lasts through the weak frames (absent grace), but most of its detections are weak.
    lucky = [(round(k * 0.2, 6), [obj(1, score=0.9 if k % 3 == 0 else 0.2)]) for k in range(40)]
    assert run(RuleEngine([zone()], CTX), lucky) == []
    one_frame = zone(track_score={"window": 1})  # the rule as good as off: the lucky frames alarm
    assert starts(run(RuleEngine([one_frame], CTX), lucky)) == [(1.2, 1)]


def test_median_rule_makes_a_young_track_earn_its_alarm():
    # window 5: at least 3 of the last 5 detections; missing ones count as 0
    instant = zone(dwell_s=0.0)
    assert starts(run(RuleEngine([instant], CTX), every(0.2, 0.0, 1.0, obj(1)))) == [(0.4, 1)]
    assert starts(run(RuleEngine([zone(dwell_s=0.0, track_score={"window": 4})], CTX),
                      every(0.2, 0.0, 1.0, obj(1)))) == [(0.2, 1)]  # 2 of 4
    # its own threshold: a 0.55 track passes the default (min_score 0.3), not median 0.6
    assert run(RuleEngine([zone(track_score={"median": 0.6})], CTX), every(0.2, 0.0, 3.0, obj(1, score=0.55))) == []
    assert starts(run(RuleEngine([zone()], CTX), every(0.2, 0.0, 3.0, obj(1, score=0.55)))) == [(1.0, 1)]


def test_a_rock_called_person_at_start_up_never_alarms_even_when_found_again():
    eng = RuleEngine([zone()], CTX)
    script = every(1.0, 0.0, 300.0, ROCK)
    # the tracker lost it for 40 s (dusk) and gives the same still object a new id
    again = (3, ROCK[1], 0.44, "person")
    script += every(1.0, 301.0, 340.0) + every(1.0, 341.0, 900.0, again)
    assert raw(eng, script) == []
    assert eng.active_tracks() == set()  # ...and it keeps no motion gate open
    off = RuleEngine(ZoneFile(zones=[zone()], background=Background(enabled=False)), CTX)
    assert starts(raw(off, every(1.0, 0.0, 300.0, ROCK))) == [(2.0, 1)]  # dwell 1 s, and 3 detections


def test_a_person_who_arrives_and_stops_still_on_the_tracks_alarms():
    eng = RuleEngine([zone(dwell_s=3.0)], CTX)
    walk = [(30.0 + k * 0.2, [ROCK, obj(2, x=900.0 - 60.0 * k)]) for k in range(12)]  # in (x <= 500) at 31.4 s
    stand = every(0.2, 32.4, 120.0, ROCK, obj(2, x=240.0))
    events = raw(eng, every(1.0, 0.0, 29.0, ROCK) + walk + stand)
    assert summary(events) == [(34.4, "intrusion", "start", "rail", 2)]  # standing still: no end


def test_a_person_who_walks_to_the_rocks_place_and_stops_alarms():
    eng = RuleEngine([zone(dwell_s=3.0)], CTX)
    walk = [(20.0 + k * 0.2, [ROCK, obj(2, x=700.0 - 40.0 * k, y=700.0, h=120.0)]) for k in range(11)]
    events = raw(eng, every(1.0, 0.0, 19.0, ROCK) + walk + every(0.2, 22.2, 60.0, ROCK, (2,) + ROCK[1:]))
    assert starts(events) == [(round(20.0 + 5 * 0.2 + 3.0, 6), 2)]  # inside (x < 500) from 21.0 s


def test_a_walker_in_the_first_seconds_alarms_on_time():
    walk = [(k * 0.2, [obj(1, x=700.0 - 40.0 * k)]) for k in range(15)]  # inside (x <= 500) from 1.0 s
    assert starts(raw(RuleEngine([zone()], CTX), walk)) == [(2.0, 1)]  # dwell 1 s from the entry


def test_someone_still_from_start_up_counts_once_they_move():
    # The price of the rule: present and motionless from the first frames, and scored no better
    # than a rock, looks like a rock.
    still = every(0.2, 0.0, 20.0, obj(1, x=IN, score=0.45))
    moving = [(round(20.2 + k * 0.2, 6), [obj(1, x=IN - 12.0 * k, score=0.45)]) for k in range(1, 11)]
    events = raw(RuleEngine([zone()], CTX), still + moving)
    # its centre must move more than 2 % of the width (20 px) from where it was first seen: 24 px
    # at 20.6 s; the dwell is long done
    assert starts(events) == [(20.6, 1)]


def test_someone_still_from_start_up_whom_the_detector_is_sure_of_alarms_and_the_rock_beside_does_not():
    # far people standing on the tracks when the camera starts score 0.6-0.8 (far_person_28-60):
    # once 3 of their last 5 detections reach sure_above (0.5) they count, still or not
    person = obj(2, x=IN + 100.0, score=0.62)
    events = raw(RuleEngine([zone()], CTX), every(0.2, 0.0, 20.0, ROCK, person))
    assert starts(events) == [(1.0, 2)]  # dwell 1 s from the first frame; the rock never
    unsure = raw(RuleEngine(ZoneFile(zones=[zone()], background=Background(sure_above=None)), CTX),
                 every(0.2, 0.0, 20.0, ROCK, person))
    assert unsure == []  # null: only moving lets a start-up track count, as before


def test_a_flickering_box_is_not_travel():
    # A reflection found at start-up, scored 0.3, whose box is now one trunk (60 px wide), now two,
    # for three frames in seven: its centre jumps 40 px (twice the radius) and back.
    narrow = (1, [IN - 30.0, 300.0, IN + 30.0, 500.0], 0.3, "person")
    wide = (1, [IN - 10.0, 300.0, IN + 90.0, 500.0], 0.3, "person")
    script = [(round(k * 0.2, 6), [wide if k % 7 >= 4 else narrow]) for k in range(600)]
    eng = RuleEngine([zone()], CTX)
    assert raw(eng, script) == []
    assert eng.active_tracks() == set()


# A reflection in moving water called "person": born long after start-up, weak, wobbling in place.
def _reflection(start: float, stop: float, tid: int = 7) -> list:
    return [(round(start + k * 0.2, 6), [obj(tid, x=IN + (5.0 if k % 2 else -5.0), score=0.28 + 0.02 * (k % 3))])
            for k in range(int(round((stop - start) / 0.2)) + 1)]


def test_a_weak_track_that_appears_in_place_never_alarms():
    eng = RuleEngine([zone(min_score=0.25)], CTX)
    assert run(eng, _reflection(30.0, 120.0)) == []
    assert eng.active_tracks() == set()  # ...and keeps no camera analysed at full rate
    # the rule is what holds it: without it the same reflection alarms after the dwell
    off = RuleEngine(ZoneFile(zones=[zone(min_score=0.25)], background=Background(weak_below=None)), CTX)
    assert starts(run(off, _reflection(30.0, 120.0))) == [(31.0, 7)]


def test_a_weak_far_walker_alarms_on_time_once_it_travels():
    # scored 0.3 all the way: it walks 10 px a frame and enters the left-half zone (x <= 500) at 32.0 s
    walk = [(round(30.0 + k * 0.2, 6), [obj(2, x=600.0 - 10.0 * k, score=0.3)]) for k in range(40)]
    assert starts(run(RuleEngine([zone()], CTX), walk)) == [(33.0, 2)]  # dwell 1 s from its entry


def test_a_weak_track_that_stands_still_is_let_go_when_it_scores_well():
    # a person standing in the zone, seen from behind a post (0.3) and then fully (0.6) from 31.0 s
    script = [(round(30.0 + k * 0.2, 6), [obj(3, score=0.3 if k < 5 else 0.6)]) for k in range(20)]
    # released once 3 of its last 5 detections reach 0.4 (31.0, 31.2, 31.4); the dwell ran from 30.0
    assert starts(run(RuleEngine([zone()], CTX), script)) == [(31.4, 3)]


def test_a_weak_boat_that_moors_in_a_no_mooring_zone_still_alarms():
    # A far boat first detected once it lies still, scored 0.3: a no-mooring zone is about objects
    # that stop, so the weak-newcomer hold does not apply there (the start-up one does).
    quay = zone(name="quay", kind="water", labels=["boat"], dwell_s=0.0, stationary_s=10.0)
    moored = every(1.0, 30.0, 60.0, obj(5, label="boat", score=0.3))
    assert summary(run(RuleEngine([quay], CTX), moored)) == [(40.0, "stationary", "start", "quay", 5)]
    intrusion = zone(name="water", kind="water", labels=["boat"], dwell_s=2.0)
    assert run(RuleEngine([intrusion], CTX), moored) == []  # the same boat is held in an intrusion zone


def test_a_held_track_continued_on_another_reflection_after_a_gap_has_not_travelled():
    # Unseen for 2 s, the tracker continues the reflection's track on a second one 90 px away (its
    # distance match reaches that far after a gap): a jump, not a walk.
    here = [(round(30.0 + k * 0.2, 6), [obj(7, score=0.3)]) for k in range(11)]
    there = [(round(34.0 + k * 0.2, 6), [obj(7, x=IN + 90.0, score=0.3)]) for k in range(150)]
    eng = RuleEngine([zone(min_score=0.25)], CTX)
    assert run(eng, here + every(0.2, 32.2, 33.8) + there) == []  # analysed frames without it between
    # seen all along, the same move is travel (a weak far walker who was never lost)
    walk = [(round(32.0 + k * 0.2, 6), [obj(7, x=IN + 10.0 * k, score=0.3)]) for k in range(1, 10)]
    moved = every(0.2, 34.0, 40.0, obj(7, x=IN + 90.0, score=0.3))
    # the median of its last 5 centres 50 px (more than its 40 px width) from its first at 33.4 s
    assert starts(run(RuleEngine([zone(min_score=0.25)], CTX), here + walk + moved)) == [(33.4, 7)]


def test_a_weak_walker_analysed_once_a_second_is_not_placed_anew():
    # An overloaded box analyses the camera every 1.2 s; the walker (scored 0.3) is on every one of
    # those frames, so the long gaps are no loss of the track: it travels and alarms.
    walk = [(round(30.0 + k * 1.2, 6), [obj(8, x=IN + 15.0 * k, score=0.3)]) for k in range(12)]
    # the median of its last 5 centres is 45 px (> its 40 px width) from its first at k = 5, 36.0 s
    assert starts(run(RuleEngine([zone(min_score=0.25)], CTX), walk)) == [(36.0, 8)]


def test_following_is_a_watched_track_anywhere_that_is_not_background():
    # what the detector thread serves before motion alone (rain, waves: no track)
    eng = RuleEngine([zone()], CTX)
    run(eng, every(0.2, 0.0, 1.0, obj(1, x=OUT)))  # a person approaching, outside the zone
    assert eng.following() and eng.active_tracks() == set()
    run(eng, every(0.2, 1.2, 1.4))  # gone from the picture
    assert not eng.following()
    run(eng, every(0.2, 1.6, 3.0, obj(2, x=OUT, label="boat")))  # no zone watches boats
    assert not eng.following()
    rock = RuleEngine([zone()], CTX)
    raw(rock, every(1.0, 0.0, 300.0, ROCK))  # background from start-up
    assert not rock.following()
