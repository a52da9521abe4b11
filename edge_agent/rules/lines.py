"""Directional line crossing: `line_crossed` when a track's anchor crosses a segment A-B.

Sides, in image coordinates (x right, y down, as the picture is seen): for A->B, the side of a
point P is the sign of  s(P) = (Bx - Ax) * (Py - Ay) - (By - Ay) * (Px - Ax).
s < 0 is the LEFT of A->B and s > 0 its RIGHT: stand on A, look at B, and left is your left hand
as you look at the screen. A line drawn left to right (A left, B right) has "up the picture"
on its left; a line drawn bottom to top has the left of the picture on its left.
`direction: in` counts crossings from the left to the right, `out` the reverse, `both` either.

Hysteresis: a track is "on a side" only while its anchor is at least `hysteresis` (fraction of
frame width, measured perpendicular to the line) from the line; in between it is on no side and
nothing changes. A crossing is a track on one side that is next on the other side, and whose
straight move from its last place on the first side to its first place on the second passes
through the segment itself (walking round the end of a short line is no crossing). So jitter on
the line never counts, a track that turns back before the hysteresis distance never counts, and
each real crossing counts once. A crossing whose track does not yet pass the median-score rule
waits (on the same side) until it does; crossing back cancels it.

Events: `start` (the alarm; the alarms stage adds the snapshot) and `end` in the same frame,
`zone` = the line's name, `zone_kind: line`, `details.direction` "in" or "out".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import hypot
from typing import Mapping

import numpy as np
from shapely.geometry import LineString

from ..alarms.event import Event, EventContext

from ..config.models import Line
from ..frames import Detections
from .filters import TrackMemo, best_rows, box_ok, may_alarm
from .schedule import Window, parse_window


LEFT, NONE, RIGHT = -1, 0, 1


@dataclass(frozen=True)
class Crossing:
    """One (line, track) pair's memory."""

    side: int = NONE  # the last side it was on (NONE: not yet on either)
    point: tuple[float, float] | None = None  # its last anchor on that side, normalised
    pending: str | None = None  # a crossing ("in"/"out") waiting for the track's median score


class LineGeometry:
    """A `Line` compiled for per-frame tests."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.name = line.name
        self.a, self.b = (tuple(map(float, p)) for p in line.points)
        self.segment = LineString([self.a, self.b])
        self.windows: list[Window] | None = (
            None if line.schedule is None else [parse_window(w) for w in line.schedule]
        )

    def side(self, point: tuple[float, float], aspect: float) -> int:
        """LEFT, RIGHT or NONE (within the hysteresis) for a normalised point; `aspect` = height / width."""
        (ax, ay), (bx, by) = self.a, self.b
        dx, dy = bx - ax, (by - ay) * aspect  # in frame widths, so the distance is one
        cross = dx * (point[1] - ay) * aspect - dy * (point[0] - ax)
        dist = cross / hypot(dx, dy)
        if abs(dist) < self.line.hysteresis or dist == 0.0:
            return NONE
        return LEFT if dist < 0 else RIGHT

    def passes(self, p0: tuple[float, float], p1: tuple[float, float]) -> bool:
        """The straight move p0 -> p1 meets the segment (scaling keeps intersections: normalised is fine)."""
        return self.segment.intersects(LineString([p0, p1]))

    def counts(self, direction: str) -> bool:
        return self.line.direction in ("both", direction)


def _anchors(geo: LineGeometry, dets: Detections, counted: np.ndarray, size: tuple[int, int]) -> dict[int, int]:
    """track id -> its row this frame that the line counts (best score on a clash)."""
    return best_rows(dets, np.nonzero(box_ok(geo.line, dets, size[1]) & counted)[0])


def _event(geo: LineGeometry, tid: int, direction: str, memo: TrackMemo, dets: Detections, row: int,
           size: tuple[int, int], t: float, media_time: float, ctx: EventContext) -> list[Event]:
    w, h = size
    bbox = [round(float(v), 4) for v in np.clip(dets.xyxy[row] / np.array([w, h, w, h]), 0.0, 1.0)]
    start = ctx.start(
        "line_crossed", t, key=(geo.name, "line_crossed", tid, f"{media_time:.3f}"), media_time=media_time,
        zone=geo.name, zone_kind="line", label=memo.label,
        score=round(max(memo.scores[-geo.line.track_score.window:]), 4), track_id=tid, bbox=bbox,
        details={"direction": direction},
    )
    return [start, EventContext.end(start, t, "crossed")]


def _advance(geo: LineGeometry, rec: Crossing, point: tuple[float, float], aspect: float) -> Crossing:
    """The pair's memory after the track was seen at `point`; a new crossing goes to `pending`."""
    side = geo.side(point, aspect)
    if side == NONE:
        return rec
    if rec.side in (NONE, side):
        return replace(rec, side=side, point=point)
    pending = None  # crossing back cancels a crossing that was waiting
    if rec.point is not None and geo.passes(rec.point, point):
        direction = "in" if rec.side == LEFT else "out"
        pending = direction if geo.counts(direction) else None
    return Crossing(side=side, point=point, pending=pending)


def step_line(geo: LineGeometry, records: Mapping[int, Crossing], dets: Detections, counted: np.ndarray,
              tracks: Mapping[int, TrackMemo], size: tuple[int, int], t: float, media_time: float,
              ctx: EventContext) -> tuple[dict[int, Crossing], list[Event]]:
    """One frame for one armed line: (its new records, its events in track order)."""
    rows = _anchors(geo, dets, counted, size)
    aspect = size[1] / float(size[0])
    anchors = dets.anchors(geo.line.anchor) / np.array(size, np.float64) if rows else None
    out = {tid: r for tid, r in records.items() if tid in tracks}  # a forgotten track goes here too
    events: list[Event] = []
    for tid in sorted(rows):
        i = rows[tid]
        point = (float(anchors[i, 0]), float(anchors[i, 1]))
        rec = _advance(geo, out.get(tid, Crossing()), point, aspect)
        if rec.pending is not None and may_alarm(tracks.get(tid), geo.line):
            events += _event(geo, tid, rec.pending, tracks[tid], dets, i, size, t, media_time, ctx)
            rec = replace(rec, pending=None)
        out[tid] = rec
    return out, events
