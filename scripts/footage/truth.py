"""Ground truth from what was drawn, and the expectations that follow from it.

The rule is the zone engine's: an object is in a zone when the bottom centre of its visible box
(clipped to the frame) lies inside the polygon. Times are media seconds of the frames.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import LineString, Point, Polygon

from .render import FrameTruth

EARLY_S = 1.0  # an alarm may come this much before entry + dwell (detected boxes reach a bit below the feet)
LATE_S = 3.0  # ... or this much after (track confirmation, a missed detection or two)


def _r(v: float) -> float:
    return round(float(v), 3)


def object_truth(frames: list[FrameTruth], zones: list[dict[str, Any]], fps: float, aspect: float,
                 boxes: bool = False) -> dict[str, Any]:
    """Per object: when seen, its zone visits (entered_at, left_at, entry point), margins, path;
    with `boxes`, the drawn box of every frame as [t, x0, y0, x1, y1] (edge-agent eval's size recall)."""
    polys = {z["name"]: Polygon(z["polygon"]) for z in zones}
    names = sorted({o.actor for f in frames for o in f.objects})
    result: dict[str, Any] = {}
    for name in names:
        seen = [(f.t, o) for f in frames for o in f.objects if o.actor == name]
        info: dict[str, Any] = {
            "label": seen[0][1].label,
            "visible": [_r(seen[0][0]), _r(seen[-1][0])],
            "zones": {},
            "path": [[_r(t), _r(o.anchor[0]), _r(o.anchor[1])] for t, o in seen if round(t * fps) % round(fps) == 0],
        }
        if boxes:
            info["boxes"] = [[_r(t), *(_r(v) for v in o.box)] for t, o in seen]
        by_t = {t: o for t, o in seen}
        for zname, poly in polys.items():
            visits: list[dict[str, Any]] = []
            margin = float("inf")
            for f in frames:
                o = by_t.get(f.t)
                inside = o is not None and poly.contains(Point(o.anchor))
                if o is not None and not inside:
                    margin = min(margin, poly.distance(Point(o.anchor)))
                if inside and (not visits or visits[-1]["left_at"] is not None):
                    visits.append({"entered_at": _r(f.t), "left_at": None, "entry_point": [_r(v) for v in o.anchor]})
                elif not inside and visits and visits[-1]["left_at"] is None:
                    visits[-1]["left_at"] = _r(f.t)
            zinfo: dict[str, Any] = {"visits": visits}
            if margin != float("inf"):
                zinfo["min_margin_outside"] = _r(margin)
            stationary = next((z for z in zones if z["name"] == zname and z.get("stationary_s")), None)
            if stationary and visits:
                zinfo["settled_at"] = _settled_at(seen, poly, stationary.get("stationary_radius", 0.03), aspect)
            info["zones"][zname] = zinfo
        result[name] = info
    return result


def _settled_at(seen: list, poly: Polygon, radius: float, aspect: float) -> float | None:
    """Earliest time inside the zone after which the anchor never strays `radius` (width units) from there."""
    pts = [(t, o.anchor) for t, o in seen]
    for i, (t, (x, y)) in enumerate(pts):
        if not poly.contains(Point(x, y)):
            continue
        if all(((px - x) ** 2 + ((py - y) / aspect) ** 2) ** 0.5 <= radius for _, (px, py) in pts[i:]):
            return _r(t)
    return None


def intrusion_expectation(zone: dict[str, Any], objects: dict[str, Any], extra: int = 0) -> dict[str, Any]:
    """Count objects of the zone's labels that stay in past the dwell; unsure ones widen the range,
    and so does `extra` (id switches tolerated in a crowd)."""
    dwell = float(zone.get("dwell_s", 1.0))
    sure, unsure, firsts = 0, 0, []
    label = zone["labels"][0]
    for obj in objects.values():
        if obj["label"] not in zone["labels"]:
            continue
        stays = []
        for v in obj["zones"][zone["name"]]["visits"]:
            end = v["left_at"] if v["left_at"] is not None else obj["visible"][1]
            stays.append((v["entered_at"], end - v["entered_at"]))
        long = [s for s in stays if s[1] >= dwell + 1.0]
        if long:
            sure += 1
            firsts.append(long[0][0] + dwell)
        elif any(s[1] >= dwell - 0.5 for s in stays):
            unsure += 1
    exp: dict[str, Any] = {"type": "intrusion", "zone": zone["name"], "label": label,
                           "count": [sure, sure + unsure + (extra if sure + unsure else 0)]}
    if sure + unsure >= 2:
        exp["distinct_tracks"] = True  # one alarm per object, never two for the same track
    if firsts:
        exp["first_alarm_within"] = [_r(min(firsts) - EARLY_S), _r(min(firsts) + LATE_S)]
    return exp


def stationary_expectation(zone: dict[str, Any], objects: dict[str, Any], stopped_at: float) -> dict[str, Any]:
    """One `stationary` alarm, not before stationary_s after the object settled within the radius."""
    stay = float(zone["stationary_s"])
    settled = [o["zones"][zone["name"]].get("settled_at") for o in objects.values()]
    settled = [s for s in settled if s is not None]
    if not settled:
        return {"type": "stationary", "zone": zone["name"], "label": zone["labels"][0], "count": [0, 0]}
    return {
        "type": "stationary", "zone": zone["name"], "label": zone["labels"][0], "count": [len(settled), len(settled)],
        "first_alarm_within": [_r(min(settled) + stay - 0.2), _r(stopped_at + stay + LATE_S)],
    }


def line_expectation(line: dict[str, Any], frames: list, aspect: float, hysteresis: float) -> dict[str, Any]:
    """Crossings of the segment by the drawn anchors, in the line's direction.

    `aspect` is width / height. Sides as docs/zones say: with y down, the sign of
    (B - A) x (P - A) is negative on the left of A->B. A crossing is the first frame the anchor
    is `hysteresis` (width units) past the line after having been as far on the other side, with
    the straight move between meeting the segment.
    """
    (ax, ay), (bx, by) = line["points"]
    seg = LineString([(ax, ay), (bx, by)])
    ux, uy = bx - ax, (by - ay) / aspect  # in width units
    length = (ux * ux + uy * uy) ** 0.5
    wanted = {"in": {"in"}, "out": {"out"}, "both": {"in", "out"}}[line.get("direction", "both")]
    times = []
    for name in sorted({o.actor for f in frames for o in f.objects}):
        side, last = 0, None
        for f in frames:
            for o in (o for o in f.objects if o.actor == name and o.label in line["labels"]):
                px, py = o.anchor
                dist = (ux * (py - ay) / aspect - uy * (px - ax)) / length
                now = 0 if abs(dist) < hysteresis else (-1 if dist < 0 else 1)
                if now and side and now != side and seg.intersects(LineString([last, (px, py)])):
                    if ("in" if side < 0 else "out") in wanted:
                        times.append(f.t)
                if now:
                    side, last = now, (px, py)
    exp: dict[str, Any] = {"type": "line_crossed", "zone": line["name"], "label": line["labels"][0],
                           "count": [len(times), len(times)]}
    if line.get("direction") in ("in", "out"):
        exp["direction"] = line["direction"]  # the events' details.direction
    if times:
        exp["first_alarm_within"] = [_r(min(times) - EARLY_S), _r(min(times) + LATE_S)]
    return exp
