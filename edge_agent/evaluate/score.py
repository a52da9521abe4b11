"""Recall by object size, per analysed frame and per expected visit, from drawn truth boxes.

An object's size is the longer side of its truth box in stream pixels ("px tall or long": a
person is taller than wide, a boat longer than tall). A frame counts as found when a detection of
the object's label has IoU >= 0.3 with its truth box. An expected visit is a stay in a zone that
watches its label, long enough to alarm (dwell, or stationary_s, plus one second, the footage
tests' rule for a sure alarm); it is found when an alarm of that zone has its box on the object.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from ..frames import Detections, Frame
from ..frames import iou_matrix
from .cases import Case, TruthObject

BUCKETS = ["<40", "40-80", "80-160", ">160"]
FRAME_IOU = 0.3
ALARM_IOU = 0.1  # an alarm's box is a smoothed track box from some frames back: looser than a detection
SURE_MARGIN_S = 1.0


def bucket(size_px: float) -> str:
    for limit, name in zip((40, 80, 160), BUCKETS):
        if size_px < limit:
            return name
    return BUCKETS[-1]


@dataclass
class Tally:
    """Found / total per size bucket."""

    found: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)

    def add(self, size_px: float, hit: bool) -> None:
        b = bucket(size_px)
        self.total[b] += 1
        self.found[b] += int(hit)

    def merge(self, other: Tally) -> None:
        self.found.update(other.found)
        self.total.update(other.total)

    def as_dict(self) -> dict[str, list[int]]:
        return {b: [self.found[b], self.total[b]] for b in BUCKETS if self.total[b]}


def _pixels(box: tuple[float, ...], size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.array([box[0] * w, box[1] * h, box[2] * w, box[3] * h], np.float64)


def longer_side(box: tuple[float, ...], size: tuple[int, int]) -> float:
    x0, y0, x1, y1 = _pixels(box, size)
    return float(max(x1 - x0, y1 - y0))


class FrameScorer:
    """The replay's `on_detections` observer: per analysed frame, was each visible object found?"""

    def __init__(self, case: Case) -> None:
        self.objects = [o for o in case.objects() if o.times]
        self.size = case.frame_size
        self.tolerance = case.frame_tolerance
        self.tally = Tally()

    def __call__(self, frame: Frame, dets: Detections) -> None:
        for obj in self.objects:
            box = obj.box_at(frame.media_time, self.tolerance)
            if box is None:
                continue
            mine = dets.xyxy[dets.class_name == obj.label]
            truth = _pixels(box, self.size)[None, :]
            hit = bool(len(mine)) and float(iou_matrix(mine, truth).max()) >= FRAME_IOU
            self.tally.add(longer_side(box, self.size), hit)


def _sure_visits(obj: TruthObject, zone: Any, end_of_view: float) -> list[tuple[float, float]]:
    need = (zone.stationary_s or zone.dwell_s) + SURE_MARGIN_S
    visits = (obj.zones.get(zone.name) or {}).get("visits") or []
    spans = [(v["entered_at"], v["left_at"] if v["left_at"] is not None else end_of_view) for v in visits]
    return [(a, b) for a, b in spans if b - a >= need]


def score_visits(case: Case, zones: list, starts: list[dict[str, Any]]) -> Tally:
    """Per expected visit (objects with drawn boxes only): did an alarm of that zone land on it?"""
    tally = Tally()
    for obj in (o for o in case.objects() if o.times):
        for zone in (z for z in zones if obj.label in z.labels):
            for a, b in _sure_visits(obj, zone, obj.times[-1]):
                sizes = [longer_side(bx, case.frame_size) for t, bx in zip(obj.times, obj.boxes) if a <= t <= b]
                hit = any(_alarm_on(e, obj, case) for e in starts
                          if e["zone"] == zone.name and e["label"] == obj.label and a <= e["media_time"] <= b + 5)
                tally.add(median(sizes), hit)
    return tally


def _alarm_on(event: dict[str, Any], obj: TruthObject, case: Case) -> bool:
    box = obj.box_at(event["media_time"], case.frame_tolerance)
    if box is None or not event.get("bbox"):
        return False
    got = _pixels(tuple(event["bbox"]), case.frame_size)[None, :]
    return float(iou_matrix(got, _pixels(box, case.frame_size)[None, :])[0, 0]) >= ALARM_IOU
