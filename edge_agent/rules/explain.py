"""Why each detection of one frame would or would not count, per zone and line: the zone editor's
"test". The same decisions the engine takes on every frame (masks, box filters, anchor inside,
enabled and scheduled), asked of one picture; what only a track has (dwell, the median score,
background) is left to the engine and said so in the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.models import ZoneFile
from ..frames import Detections
from .engine import EngineState, armed
from .filters import box_ok, masked


def explain(rules: ZoneFile, dets: Detections, size: tuple[int, int], t: float, timezone: str) -> list[dict[str, Any]]:
    """One entry per detection: its box (normalised xyxy), label, score, whether a mask hides it,
    and for each zone and line: anchor point, inside (zones), filters passed, armed, counts."""
    w, h = size
    state = EngineState.create(rules)
    hidden = masked(state.masks, dets, w, h)
    scale = np.array([w, h, w, h], np.float64)
    out = [{"label": str(dets.class_name[i]), "score": round(float(dets.confidence[i]), 3),
            "box": [round(float(v), 4) for v in np.clip(dets.xyxy[i] / scale, 0, 1)], "masked": bool(hidden[i]),
            "zones": {}} for i in range(len(dets))]
    for geo in state.zones:
        on = armed(state, geo, t, timezone)
        ok, inside, points = geo.eligible(dets, h), geo.inside(dets, w, h), geo.points(dets, w, h)
        for i, row in enumerate(out):
            row["zones"][geo.name] = {
                "anchor": [round(float(v), 4) for v in points[i]], "inside": bool(inside[i]), "filters": bool(ok[i]),
                "armed": on, "counts": bool(on and ok[i] and inside[i] and not hidden[i])}
    for line in state.lines:
        on = armed(state, line, t, timezone)
        ok = box_ok(line.line, dets, h)
        for i, row in enumerate(out):
            row["zones"][line.name] = {"line": True, "filters": bool(ok[i]), "armed": on,
                                       "counts": bool(on and ok[i] and not hidden[i])}
    return out
