"""The evaluation harness's parts: why a case fails, size buckets, per-frame and per-visit recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.config.models import Zone
from edge_agent.errors import EdgeAgentError
from edge_agent.evaluate import judge, load_cases
from edge_agent.evaluate.cases import Case
from edge_agent.evaluate.score import FrameScorer, bucket, score_visits
from edge_agent.frames import Detections, Frame

EXP = {"type": "intrusion", "zone": "bed", "label": "person", "count": [1, 1], "first_alarm_within": [2.0, 5.0]}


def _start(zone="bed", t=3.0, track=1, label="person", bbox=None):
    return {"phase": "start", "type": "intrusion", "zone": zone, "label": label, "media_time": t,
            "track_id": track, "event_id": f"{zone}-{t}-{track}", "bbox": bbox}


@pytest.mark.parametrize("events,kind", [
    ([], "missed"),
    ([_start(t=1.0)], "too early"),
    ([_start(t=9.0)], "too late"),
    ([_start(t=3.0), _start(t=4.0, track=2)], "duplicate tracks"),
    ([_start(t=3.0), _start(zone="grass", t=3.5, track=2)], "wrong zone"),
    ([_start(t=3.0), _start(t=3.5, track=2, label="boat")], "false alarm"),
])
def test_judge_names_the_reason(events, kind):
    reasons = judge({"expect": [EXP], "only_listed": True}, events)
    assert len(reasons) == 1 and reasons[0].startswith(kind), reasons


def test_judge_passes_a_good_case_and_flags_a_track_alarmed_twice():
    assert judge({"expect": [EXP], "only_listed": True}, [_start()]) == []
    two = {**EXP, "count": [2, 2], "distinct_tracks": True}
    reasons = judge({"expect": [two]}, [_start(), _start(t=4.0)])
    assert reasons == ["duplicate tracks: intrusion person in bed: one track alarmed twice ([1, 1])"]
    assert judge({"expect": [{**EXP, "count": [0, 0]}]}, [_start()])[0].startswith("false alarm")


@pytest.mark.parametrize("px,name", [(10, "<40"), (39.9, "<40"), (40, "40-80"), (159, "80-160"), (160, ">160")])
def test_size_buckets(px, name):
    assert bucket(px) == name


def _case(tmp_path: Path) -> Case:
    # A person 60 px tall (a 640x360 stream) from t = 0 to 4 s, in zone "bed" from 1 s on.
    rows = [[t / 10, 0.5, 0.5, 0.55, 0.5 + 60 / 360] for t in range(0, 41)]
    spec = {"clip": "x.mp4", "zones": "z.yaml", "video": {"width": 640, "height": 360, "fps": 10},
            "expect": [EXP], "truth": {"objects": {"p": {
                "label": "person", "boxes": rows,
                "zones": {"bed": {"visits": [{"entered_at": 1.0, "left_at": None, "entry_point": [0.5, 0.6]}]}}}}}}
    return Case(tmp_path / "c.expected.yaml", spec)


def test_frame_scorer_counts_iou_hits_by_label(tmp_path):
    scorer = FrameScorer(_case(tmp_path))
    true_px = [320, 180, 352, 240]

    def frame(t):
        return Frame("cam", 0, t, t)

    def dets(box, name):
        return Detections(np.array([box], np.float32), [0.9], [0], data={"class_name": np.array([name], object)})

    scorer(frame(1.0), dets(true_px, "person"))  # hit
    scorer(frame(1.2), dets([340, 200, 372, 260], "person"))  # IoU 480 / 3360 = 0.14 < 0.3: missed
    scorer(frame(1.4), dets(true_px, "boat"))  # wrong label
    scorer(frame(9.0), dets(true_px, "person"))  # no truth then: not counted
    assert scorer.tally.as_dict() == {"40-80": [1, 3]}


def test_visit_found_only_by_an_alarm_on_the_object(tmp_path):
    case = _case(tmp_path)
    zone = Zone(name="bed", kind="rail", polygon=[[0, 0], [1, 0], [1, 1]], labels=["person"], dwell_s=1.0)
    on = [0.5, 0.5, 0.55, 0.5 + 60 / 360]
    assert score_visits(case, [zone], [_start(t=2.0, bbox=on)]).as_dict() == {"40-80": [1, 1]}
    elsewhere = [0.1, 0.1, 0.15, 0.25]
    assert score_visits(case, [zone], [_start(t=2.0, bbox=elsewhere)]).as_dict() == {"40-80": [0, 1]}


def test_load_cases_needs_case_files(tmp_path):
    with pytest.raises(EdgeAgentError, match="no .*zone cases"):
        load_cases([tmp_path])
    (tmp_path / "a.expected.yaml").write_text("clip: a.mp4\n")
    with pytest.raises(EdgeAgentError, match="a.expected.yaml: a case needs zones, expect, video"):
        load_cases([tmp_path])


def _timed_case(path: str, spec: dict) -> Case:
    return Case(Path(path), {"video": {"frames": 50, "fps": 10}, **spec})


def test_rtsp_batches_share_time_zone_and_start_and_camera_ids_stay_unique():
    from edge_agent.evaluate.live import batches, camera_ids

    cases = [_timed_case("a/x.expected.yaml", {}), _timed_case("b/x.expected.yaml", {"video": {"frames": 10, "fps": 10}}),
             _timed_case("c/night.expected.yaml", {"timezone": "Europe/Amsterdam", "start": "2026-06-01T20:00:00Z"}),
             _timed_case("d/y.expected.yaml", {})]
    assert camera_ids(cases) == ["x", "x.2", "night", "y"]
    # the night case gets an agent (a wall clock and a time zone) of its own; the shortest clips go together
    assert sorted(batches(cases, 2)) == sorted([[1, 0], [3], [2]])
