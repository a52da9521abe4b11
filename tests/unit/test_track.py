"""The tracker on scripted boxes: stable ids at any frame rate, crossings, weak boats, expiry."""

from __future__ import annotations

import numpy as np

from edge_agent.config.models import Zone
from edge_agent.frames import Detections
from edge_agent.alarms.event import EventContext
from edge_agent.rules.engine import RuleEngine
from edge_agent.frames import iou_matrix
from edge_agent.track import Tracker, greedy_match, straddlers

PERSON, CAR, BOAT = 0, 2, 8
NAMES = {PERSON: "person", CAR: "car", BOAT: "boat"}


def box(cx: float, cy: float, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def dets(*rows) -> Detections:
    """rows: (box, score, class_id)."""
    return Detections(
        xyxy=np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        confidence=np.array([r[1] for r in rows], np.float32),
        class_id=np.array([r[2] for r in rows], np.int32),
        data={"class_name": np.array([NAMES[r[2]] for r in rows], dtype=object)},
    )


def ids(tracker: Tracker, t: float, *rows) -> list[int]:
    return tracker.update(dets(*rows), t).tracker_id.tolist()


def test_ids_stable_across_varying_frame_rates_with_motion():
    # Two people walking at 60 px/s and -40 px/s; at 2 fps a box moves 30 px of its 40 px width,
    # so plain IoU with the last box (0.14) would not match: the px/s prediction does.
    times = [i / 25 for i in range(25)] + [1.0 + i * 0.5 for i in range(1, 8)] + [4.5 + i * 0.2 for i in range(1, 10)]
    tr = Tracker()
    seen = []
    for t in times:
        seen.append(ids(tr, t, (box(100 + 60 * t, 300), 0.9, PERSON), (box(700 - 40 * t, 500), 0.8, PERSON)))
    assert all(row == [1, 2] for row in seen), seen


def test_one_fps_walker_keeps_its_id_from_the_second_frame():
    # At 1 fps a walker moves more than a body width per frame: no overlap, and a new track has
    # no velocity yet. The distance fallback (similar size, within reach) continues the track.
    tr = Tracker()
    out = [ids(tr, float(t), (box(100 + 50 * t, 300), 0.9, PERSON)) for t in range(8)]
    assert out == [[1]] * 8
    # out of reach (5 box sizes in 1 s) or a very different size: a different object
    assert ids(tr, 8.0, (box(100 + 50 * 7 + 320, 300), 0.9, PERSON)) == [2]
    assert ids(tr, 9.0, (box(100 + 50 * 7 + 320 + 60, 300, 120, 300), 0.9, PERSON)) == [3]


def test_crossing_people_keep_their_ids():
    # Two alike people on one path pass through each other at t = 2 s; just after, each box
    # overlaps both last boxes equally, so only the motion prediction tells them apart.
    tr = Tracker()
    out = []
    for i in range(40):
        t = i * 0.1
        a = (box(200 + 100 * t, 400, 50, 130), 0.9, PERSON)
        b = (box(600 - 100 * t, 400, 50, 130), 0.85, PERSON)
        out.append(ids(tr, t, a, b) if i % 2 else ids(tr, t, b, a)[::-1])  # row order must not matter
    assert out[0] == [2, 1]  # b came first in the first frame
    assert all(row == out[0] for row in out), out


def test_low_score_boat_continues_its_track_but_starts_none():
    tr = Tracker(high_score=0.4, low_score=0.1)
    assert ids(tr, 0.0, (box(300, 300), 0.8, BOAT)) == [1]
    for k in range(1, 10):  # the boat's score sags below high_score for 2 s
        assert ids(tr, k * 0.2, (box(300 + k, 300), 0.2, BOAT)) == [1]
    assert ids(tr, 2.2, (box(310, 300), 0.7, BOAT)) == [1]
    # a weak detection of something new is not a track: -1, and no id is used up
    assert ids(tr, 2.4, (box(310, 300), 0.7, BOAT), (box(800, 300), 0.2, BOAT)) == [1, -1]
    assert ids(tr, 2.6, (box(310, 300), 0.7, BOAT), (box(800, 300), 0.6, BOAT)) == [1, 2]
    # below low_score is noise
    assert ids(tr, 2.8, (box(310, 300), 0.05, BOAT)) == [-1]


def test_one_missed_frame_does_not_reset():
    tr = Tracker()
    assert ids(tr, 0.0, (box(100, 100), 0.9, BOAT)) == [1]
    assert ids(tr, 0.2) == []
    assert ids(tr, 0.4, (box(102, 100), 0.9, BOAT)) == [1]


def test_expiry_is_by_time_not_frames():
    # 25 fps: 40 empty frames (1.6 s) are within a 2 s grace
    fast = Tracker(lost_grace_s=2.0)
    ids(fast, 0.0, (box(100, 100), 0.9, PERSON))
    for i in range(1, 41):
        assert ids(fast, i / 25) == []
    assert ids(fast, 41 / 25, (box(100, 100), 0.9, PERSON)) == [1]
    # 1 fps: only 2 empty frames, but 3 s: the track is gone and the object gets a new id
    slow = Tracker(lost_grace_s=2.0)
    ids(slow, 0.0, (box(100, 100), 0.9, PERSON))
    assert ids(slow, 1.0) == [] and 1 in slow.tracks
    assert ids(slow, 2.0) == [] and 1 in slow.tracks  # exactly at the grace: still kept
    assert ids(slow, 3.0) == [] and slow.tracks == {}
    assert ids(slow, 4.0, (box(100, 100), 0.9, PERSON)) == [2]


def test_no_frames_at_all_is_not_absence():
    tr = Tracker(lost_grace_s=2.0)
    ids(tr, 0.0, (box(100, 100), 0.9, PERSON))
    assert ids(tr, 30.0, (box(101, 100), 0.9, PERSON)) == [1]


def test_class_aware_matching_and_increasing_ids():
    tr = Tracker()
    assert ids(tr, 0.0, (box(100, 100), 0.9, PERSON)) == [1]
    assert ids(tr, 0.2, (box(100, 100), 0.9, CAR), (box(101, 100), 0.9, PERSON)) == [2, 1]
    assert ids(tr, 0.4, (box(500, 100), 0.9, PERSON)) == [3]


def test_min_hits_confirms_before_giving_an_id():
    tr = Tracker(min_hits=3)
    assert ids(tr, 0.0, (box(100, 100), 0.9, PERSON)) == [-1]
    assert ids(tr, 0.2, (box(100, 100), 0.9, PERSON)) == [-1]
    assert ids(tr, 0.4, (box(100, 100), 0.9, PERSON)) == [1]
    # a one-frame blip never becomes a track and uses no id
    assert ids(tr, 0.6, (box(100, 100), 0.9, PERSON), (box(600, 100), 0.9, PERSON)) == [1, -1]
    assert ids(tr, 0.8, (box(100, 100), 0.9, PERSON)) == [1]
    for t in (1.0, 1.2, 1.4):
        out = ids(tr, t, (box(100, 100), 0.9, PERSON), (box(600, 100), 0.9, PERSON))
    assert out == [1, 2]


def test_tracks_view_and_rows_kept_in_order():
    tr = Tracker()
    d = dets((box(100, 100), 0.9, PERSON), (box(900, 100), 0.05, PERSON), (box(500, 100), 0.7, BOAT))
    out = tr.update(d, 10.0)
    assert out.tracker_id.tolist() == [1, -1, 2]
    np.testing.assert_array_equal(out.xyxy, d.xyxy)
    tr.update(dets((box(110, 100), 0.8, PERSON)), 10.5)
    info = tr.tracks[1]
    assert (info.class_name, info.first_seen, info.last_seen, info.hits) == ("person", 10.0, 10.5, 2)
    assert info.box == tuple(float(v) for v in box(110, 100))
    assert tr.tracks[2].last_seen == 10.0


def test_matching_helpers():
    a = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32)
    b = np.array([[0, 0, 10, 5], [100, 100, 110, 110]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[0.5, 0.0], [0.0, 0.0]])
    # greedy takes the best pair first, then the best remaining one
    assert greedy_match(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.3) == [(0, 0)]
    assert greedy_match(np.array([[0.9, 0.8], [0.85, 0.4]]), 0.3) == [(0, 0), (1, 1)]


# YOLOv3-tiny person boxes (640 x 480 pixels, score) of the man and the woman who walk down onto
# the lawn in tests/footage/vtest_restricted.mp4 (OpenCV's vtest.avi), at 5 fps from 3.6 s: one
# box for the pair while she is half behind him, two once they part, and at 5.0 s a third, weak
# box that NMS left between the two.
PAIR_PARTING = [
    (3.6, [([346, 330, 397, 479], 0.59)]),
    (3.8, [([309, 342, 386, 468], 0.85)]),
    (4.0, [([288, 330, 343, 461], 0.85)]),
    (4.2, [([274, 326, 337, 463], 0.87)]),
    (4.4, [([254, 332, 317, 452], 0.59)]),
    (4.6, [([261, 319, 300, 441], 0.89), ([231, 322, 284, 445], 0.78)]),
    (4.8, [([207, 314, 260, 451], 0.63), ([236, 315, 288, 448], 0.63)]),
    (5.0, [([230, 310, 277, 433], 0.93), ([196, 326, 236, 440], 0.75), ([209, 318, 259, 442], 0.46)]),
    (5.2, [([184, 319, 227, 444], 0.86), ([227, 308, 270, 436], 0.78)]),
    (5.4, [([213, 307, 264, 433], 0.97), ([165, 320, 214, 439], 0.93)]),
    (5.6, [([206, 304, 252, 430], 0.95), ([152, 317, 203, 433], 0.91)]),
    (5.8, [([147, 317, 191, 434], 0.96), ([202, 309, 247, 428], 0.9)]),
    (6.0, [([140, 311, 190, 429], 0.95), ([193, 315, 240, 425], 0.93)]),
]


def _pair_frames():
    for t, rows in PAIR_PARTING:
        yield t, dets(*[(b, score, PERSON) for b, score in rows])


def test_a_box_between_a_parting_pair_takes_no_track():
    # The box between the two fits her track better (IoU 0.64) than her own box does (0.55);
    # matched first it took her track, her box started a third id and his track was lost.
    tr = Tracker()
    sides: dict[str, set[int]] = {"left": set(), "right": set()}
    for t, d in _pair_frames():
        out = tr.update(d, t).tracker_id.tolist()
        if t == 5.0:
            assert out[2] == -1  # the box between them: continues no track and starts none
        if t >= 4.6:  # two people: the left one walks on to the left, the right one stays
            left, right = np.argsort(d.xyxy[:2, 0])
            sides["left"].add(out[left])
            sides["right"].add(out[right])
    assert sides == {"left": {1}, "right": {2}}  # the pair's track goes on with him: 2 ids in all
    assert sorted(tr.tracks) == [1, 2]


def test_a_parting_pair_on_a_lawn_raises_one_alarm_each():
    # Tracker and rules together: one person, one alarm (three before the fix).
    lawn = Zone(name="lawn", kind="restricted", labels=["person"], dwell_s=1.0,
                polygon=[(0.0, 0.5), (0.4, 0.6), (0.7, 0.8), (1.0, 0.93), (1.0, 1.0), (0.0, 1.0)])
    tr, rules = Tracker(), RuleEngine([lawn], EventContext("site", "box", "cam"))
    events = []
    for t, d in _pair_frames():
        events += rules.step(tr.update(d, t), (640, 480), 1_780_308_000.0 + t, t)
    starts = [(e.media_time, e.track_id) for e in events if e.phase == "start"]
    assert starts == [(4.6, 1), (5.6, 2)]


def test_straddlers_sit_between_two_level_stronger_boxes():
    man, woman = (box(200, 400, 40, 120), 0.9, PERSON), (box(235, 400, 40, 120), 0.8, PERSON)
    between = (box(218, 402, 40, 118), 0.5, PERSON)
    d = dets(man, woman, between)
    assert straddlers(d, np.arange(3), 0.75).tolist() == [False, False, True]
    # as strong as one of them: the box is a person, not a leftover
    assert not straddlers(dets(man, woman, (between[0], 0.85, PERSON)), np.array([2]), 0.75)[0]
    # a small box inside one bigger box (a child in front of an adult) is not level with it;
    # another class is no leftover of these two
    adult, child = (box(218, 400, 90, 160), 0.9, PERSON), (box(218, 420, 30, 70), 0.5, PERSON)
    assert not straddlers(dets(adult, woman, child), np.array([2]), 0.75)[0]
    assert not straddlers(dets(man, woman, (between[0], 0.5, BOAT)), np.array([2]), 0.75)[0]
    # a far person whose box reaches into a nearer person's box is not level with it
    near = (box(218, 470, 50, 200), 0.9, PERSON)
    assert not straddlers(dets(near, woman, (box(210, 360, 40, 80), 0.5, PERSON)), np.array([2]), 0.75)[0]
    # only one stronger box beside it: nothing to straddle
    assert not straddlers(dets(man, between), np.array([1]), 0.75)[0]


def test_a_weaker_second_box_of_a_tracked_person_starts_no_track_but_a_neighbour_does():
    """rain_shake_rail's boxes at 2.0 s: the whole walker at 0.60 continuing track 1 and a
    shoulder-to-knee box of the same walker at 0.39 (IoU 0.42) beside it. Under a zone's 0.35
    floor the second box started track 3, and the walker alarmed twice. A person beside them
    (IoU 0.1) still gets a track of their own."""
    tr = Tracker(high_score=0.35, low_score=0.1)
    walker = [732.8, 188.3, 786.3, 288.6]
    assert ids(tr, 1.8, ([728.2, 190.5, 791.7, 291.9], 0.6, PERSON)) == [1]
    assert ids(tr, 2.0, (walker, 0.6, PERSON), ([697.9, 186.4, 772.3, 283.0], 0.39, PERSON)) == [1, -1]
    assert set(tr.tracks) == {1}
    neighbour = [778.0, 190.0, 830.0, 290.0]
    got = ids(tr, 2.2, (walker, 0.6, PERSON), (neighbour, 0.39, PERSON))
    assert got[0] == 1 and got[1] not in (-1, 1)
