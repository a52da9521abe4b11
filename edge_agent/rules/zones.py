"""Zone geometry: which detections count for a zone, and whose anchor point lies inside it.

Polygons are in normalized coordinates (fractions of width and height), so the same zone file fits
a camera's main and sub stream. A point on the polygon's edge counts as inside, so a zone drawn
to the frame's bottom edge (y = 1.0) catches a box whose bottom touches the frame's edge. Anchor
points are clipped to the frame first, for the same reason.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon

from ..config.geometry import polygon_problem
from ..config.models import Zone
from ..frames import Detections
from .filters import box_ok
from .schedule import Window, parse_window

_EMPTY = np.zeros(0, dtype=bool)


def _polygon(points: Sequence[Sequence[float]], what: str) -> Polygon:
    problem = polygon_problem(points)
    if problem:
        raise ValueError(f"{what}: {problem}")
    poly = Polygon(points)
    shapely.prepare(poly)  # speeds up the repeated point tests
    return poly


def points_inside(polygon: Polygon, points: np.ndarray) -> np.ndarray:
    """Bool mask of (N, 2) normalised points inside `polygon` (its edge counts as inside): the one
    point-in-zone test, for zones and patrol check-in areas alike."""
    if len(points) == 0:
        return _EMPTY.copy()
    return np.asarray(shapely.intersects_xy(polygon, points[:, 0], points[:, 1]), dtype=bool)


def compile_polygon(points: Sequence[Sequence[float]], what: str) -> Polygon:
    """A validated, prepared polygon for repeated point tests."""
    return _polygon(points, what)


class ZoneGeometry:
    """A `Zone` compiled for per-frame tests: polygons, exclusions, filters, parsed schedule."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.name = zone.name
        self.polygon = _polygon(zone.polygon, f"zone {zone.name!r} polygon")
        self.exclusions = [
            _polygon(p, f"zone {zone.name!r} exclude[{i}]") for i, p in enumerate(zone.exclude)
        ]
        self.windows: list[Window] | None = (
            None if zone.schedule is None else [parse_window(w) for w in zone.schedule]
        )

    def points(self, dets: Detections, width: int, height: int) -> np.ndarray:
        """(N, 2) normalized anchor points (the zone's anchor), clipped to the frame."""
        if len(dets) == 0:
            return np.zeros((0, 2), np.float64)
        pts = dets.anchors(self.zone.anchor).astype(np.float64) / np.array([width, height], np.float64)
        return np.clip(pts, 0.0, 1.0)

    def inside(self, dets: Detections, width: int, height: int) -> np.ndarray:
        """Bool mask: the anchor is inside the zone polygon and inside none of its exclusions."""
        if len(dets) == 0:
            return _EMPTY.copy()
        pts = self.points(dets, width, height)
        mask = points_inside(self.polygon, pts)
        for excl in self.exclusions:
            mask &= ~points_inside(excl, pts)
        return mask

    def eligible(self, dets: Detections, height: int) -> np.ndarray:
        """Bool mask: the zone's box filters (label, score, size, aspect) pass."""
        return box_ok(self.zone, dets, height)


def compile_zones(zones: Sequence[Zone]) -> list[ZoneGeometry]:
    """Compile zones in file order; names must be unique (the loader checks, this guards)."""
    unique_names(z.name for z in zones)
    return [ZoneGeometry(zone) for zone in zones]


def unique_names(names: Iterable[str]) -> None:
    """Zones and lines share one name space: an event's `zone` names either."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"name {name!r} is used twice; zone and line names must be unique per camera")
        seen.add(name)


def compile_masks(masks: Sequence[Sequence[Sequence[float]]]) -> tuple[Polygon, ...]:
    return tuple(_polygon(p, f"masks[{i}]") for i, p in enumerate(masks))
