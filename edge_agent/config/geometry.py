"""What a usable polygon is, for the config loader (which reports it with its line) and the rules
(which compile polygons): at least three points, inside the picture, with an area, not crossing itself."""

from __future__ import annotations

from typing import Sequence

import shapely
from shapely.geometry import Polygon


def polygon_problem(points: Sequence[Sequence[float]]) -> str | None:
    """Why `points` is not a usable zone polygon, or None. The config loader reports this."""
    if len(points) < 3:
        return f"a polygon needs at least 3 points, got {len(points)}"
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return f"point [{x}, {y}] is outside 0..1 (coordinates are fractions of width and height)"
    poly = Polygon(points)
    if poly.convex_hull.area <= 0:
        return "the polygon has no area (its points are on one line)"
    if not poly.is_valid:
        return f"the polygon crosses itself ({shapely.is_valid_reason(poly)})"
    return None
