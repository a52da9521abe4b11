"""Zone geometry: anchors, exclusions, filters, polygon problems."""

import numpy as np
import pytest

from edge_agent.config.models import Zone
from edge_agent.frames import Detections
from edge_agent.rules.zones import ZoneGeometry, compile_zones, polygon_problem

W, H = 1000, 500
LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


def dets(boxes, scores=None, names=None) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.array(scores or [0.9] * n, np.float32),
        class_id=np.zeros(n, np.int32),
        data={"class_name": np.array(names or ["person"] * n, dtype=object)},
    )


def zone(**kw) -> Zone:
    base = dict(name="z", kind="rail", polygon=LEFT_HALF, labels=["person"])
    base.update(kw)
    return Zone(**base)


def test_anchor_choice_decides_inside():
    # A box straddling x = 0.5: its left-bottom corner is inside, its right-bottom corner is not.
    d = dets([[400, 100, 560, 300]])
    assert ZoneGeometry(zone(anchor="bottom_left")).inside(d, W, H).tolist() == [True]
    assert ZoneGeometry(zone(anchor="bottom_right")).inside(d, W, H).tolist() == [False]
    assert ZoneGeometry(zone(anchor="bottom_center")).inside(d, W, H).tolist() == [True]  # x = 480


def test_top_versus_bottom_anchor_on_a_horizontal_zone():
    lower = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
    d = dets([[100, 100, 200, 300]])  # top y = 0.2, bottom y = 0.6, centre 0.4
    assert ZoneGeometry(zone(polygon=lower)).inside(d, W, H).tolist() == [True]
    assert ZoneGeometry(zone(polygon=lower, anchor="top_center")).inside(d, W, H).tolist() == [False]
    assert ZoneGeometry(zone(polygon=lower, anchor="center")).inside(d, W, H).tolist() == [False]


def test_box_touching_frame_bottom_counts_for_a_zone_drawn_to_the_edge():
    d = dets([[100, 300, 200, 520]])  # detector box spills below the frame
    assert ZoneGeometry(zone()).inside(d, W, H).tolist() == [True]


def test_exclusion_polygon_removes_points():
    hole = [(0.0, 0.0), (0.2, 0.0), (0.2, 1.0), (0.0, 1.0)]
    geo = ZoneGeometry(zone(exclude=[hole]))
    d = dets([[50, 100, 150, 300], [300, 100, 400, 300], [700, 100, 800, 300]])
    assert geo.inside(d, W, H).tolist() == [False, True, False]


def test_filters_labels_score_and_size():
    geo = ZoneGeometry(zone(labels=["person", "boat"], min_score=0.5, min_size=0.2))
    d = dets(
        [[0, 0, 10, 100], [0, 0, 10, 100], [0, 0, 10, 100], [0, 0, 10, 99], [0, 0, 10, 100]],
        scores=[0.5, 0.49, 0.9, 0.9, 0.9],
        names=["person", "person", "car", "boat", "boat"],
    )
    # height 100 / 500 = 0.2 exactly passes; 99 does not; score 0.5 exactly passes
    assert geo.eligible(d, H).tolist() == [True, False, False, False, True]


def test_empty_detections():
    geo = ZoneGeometry(zone())
    assert geo.inside(Detections.empty(), W, H).shape == (0,)
    assert geo.eligible(Detections.empty(), H).shape == (0,)


def test_polygon_problems_are_named():
    assert polygon_problem(LEFT_HALF) is None
    assert "at least 3 points" in polygon_problem([(0, 0), (1, 1)])
    assert "outside 0..1" in polygon_problem([(0, 0), (1.5, 0), (1, 1)])
    assert "no area" in polygon_problem([(0, 0), (0.5, 0.5), (1, 1)])
    assert "crosses itself" in polygon_problem([(0, 0), (1, 1), (1, 0), (0, 1)])
    # The config model rejects this too; the engine guards zones built without validation.
    bowtie = Zone.model_construct(**{**zone().model_dump(), "polygon": [(0, 0), (1, 1), (1, 0), (0, 1)]})
    with pytest.raises(ValueError, match="zone 'z' polygon: the polygon crosses itself"):
        ZoneGeometry(bowtie)


def test_duplicate_zone_names_and_bad_schedule_are_rejected():
    with pytest.raises(ValueError, match="used twice"):
        compile_zones([zone(), zone()])
    evening = Zone.model_construct(**{**zone().model_dump(), "schedule": ["evening"]})
    with pytest.raises(ValueError, match="not a time range"):
        ZoneGeometry(evening)
