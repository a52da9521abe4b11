"""What the map, the health board and the patrol board show, read from the fleet tables.

One rule colours a camera everywhere (`camera_state`): its box offline (its last will) or silent,
or the camera offline/stalled, is `offline`; a tampered view is `tampered`; an open alarm on it is
`alarm`; otherwise its health state (`online` shows as ok). A camera's state is the newer of its
box's inventory and health report.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..clock import parse_iso
from .queries import OPEN_STATES, local_time
from .schema import alarms, checkins, devices, media, patrol_points

DOWN = ("offline", "stalled", "stopped")
POINT_ORDER = {"overdue": 0, "camera_down": 1, "unknown": 2, "ok": 3}


def _load(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def fleet(engine: Engine, now: float, stale_after_s: float) -> list[dict[str, Any]]:
    """Every box with its inventory and health parsed and its own state: online | offline | silent."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(devices).order_by(devices.c.site, devices.c.device)).mappings()]
    for r in rows:
        r["inventory"], r["health"] = _load(r["inventory"]), _load(r["health"])
        r["age_s"] = round(now - r["last_seen"], 1)
        r["state"] = "offline" if r["status"] == "offline" else ("silent" if r["age_s"] > stale_after_s else "online")
    return rows


def _alarmed(engine: Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        q = sa.select(alarms.c.site, alarms.c.device, alarms.c.camera).where(
            alarms.c.state.in_(OPEN_STATES), alarms.c.type != "patrol_overdue").distinct()  # overdue is the patrol's, not the camera's
        return {tuple(r) for r in conn.execute(q)}  # type: ignore[misc]


def camera_state(box: dict[str, Any], cam: dict[str, Any], alarmed: bool) -> str:
    health = (box["health"].get("cameras") or {}).get(cam["id"]) or {}
    newer_health = (box["health_at"] or 0) > (box["inventory_at"] or 0) and health.get("state")
    state = str(health["state"] if newer_health else cam.get("state", "connecting"))
    if box["state"] != "online" or state in DOWN:
        return "offline"
    if cam.get("tampered"):
        return "tampered"
    return "alarm" if alarmed else ("ok" if state == "online" else state)


def cameras(boxes: list[dict[str, Any]], alarmed: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    out = []
    for box in boxes:
        health = box["health"].get("cameras") or {}
        for cam in box["inventory"].get("cameras") or []:
            h = health.get(cam["id"]) or {}
            out.append({
                "site": box["site"], "device": box["device"], "id": cam["id"], "name": cam.get("name") or cam["id"],
                "lat": cam.get("lat"), "lon": cam.get("lon"),
                "state": camera_state(box, cam, (box["site"], box["device"], cam["id"]) in alarmed),
                "fps": h.get("fps_analysed"), "frame_age_s": h.get("last_frame_age_s"),
            })
    return out


def _point_states(engine: Engine) -> dict[tuple[str, str, str], dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(patrol_points)).mappings()
        return {(r["site"], r["device"], r["point"]): {**_load(r["payload"]), "state": r["state"]} for r in rows}


def points(engine: Engine, boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every patrol point of every inventory, with the state its box last published."""
    states = _point_states(engine)
    out = []
    for box in boxes:
        for p in box["inventory"].get("patrol_points") or []:
            st = states.get((box["site"], box["device"], p["id"])) or {}
            out.append({**p, "site": box["site"], "device": box["device"], "state": st.get("state", "unknown"),
                        "due": st.get("due"), "last_checkin": st.get("last_checkin"), "last_member": st.get("last_member")})
    return out


def map_data(engine: Engine, now: float, stale_after_s: float) -> dict[str, Any]:
    boxes = fleet(engine, now, stale_after_s)
    return {"cameras": cameras(boxes, _alarmed(engine)), "points": points(engine, boxes)}


def health_board(engine: Engine, now: float, stale_after_s: float, tz: str) -> list[dict[str, Any]]:
    """Every box and its cameras; boxes with a problem first."""
    boxes = fleet(engine, now, stale_after_s)
    alarmed = _alarmed(engine)
    out = []
    for box in boxes:
        mqtt, detector = box["health"].get("mqtt") or {}, box["health"].get("detector") or {}
        cams = cameras([box], alarmed)
        out.append({
            "site": box["site"], "device": box["device"], "state": box["state"], "age_s": box["age_s"],
            "last_seen": local_time(box["last_seen"], tz), "detector_ms": detector.get("ms_per_frame"),
            "outbox_depth": mqtt.get("outbox_depth"), "outbox_oldest_s": mqtt.get("outbox_oldest_s"),
            "cameras": cams, "problems": sum(c["state"] in ("offline", "tampered") for c in cams),
        })
    return sorted(out, key=lambda b: (b["state"] == "online", -b["problems"], b["site"], b["device"]))


def _last_checkins(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest check-in per (site, point), with whether its snapshot has arrived."""
    latest = sa.select(checkins.c.site, checkins.c.point, sa.func.max(checkins.c.at).label("at")) \
        .group_by(checkins.c.site, checkins.c.point).subquery()
    q = sa.select(checkins, media.c.event_id.label("snap")).join(
        latest, sa.and_(checkins.c.site == latest.c.site, checkins.c.point == latest.c.point, checkins.c.at == latest.c.at)
    ).outerjoin(media, sa.and_(media.c.event_id == checkins.c.event_id, media.c.kind == "snapshot"))
    with engine.connect() as conn:
        return {(r["site"], r["point"]): dict(r) for r in conn.execute(q).mappings()}


def patrol_board(engine: Engine, now: float, stale_after_s: float, tz: str) -> list[dict[str, Any]]:
    """Per team: its points (overdue first, then camera down, then soonest due) with the last
    check-in, and the share of its points checked in today (site time)."""
    day_start = datetime.fromtimestamp(now, ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    last = _last_checkins(engine)
    teams: dict[str, list[dict[str, Any]]] = {}
    for p in points(engine, fleet(engine, now, stale_after_s)):
        c = last.get((p["site"], p["id"]))
        at = c["at"] if c else _epoch(p["last_checkin"])
        p["last"] = {"at": local_time(at, tz) if at else "", "member": (c or {}).get("member") or p["last_member"],
                     "badge": (c or {}).get("badge"), "event_id": c["event_id"] if c and c["snap"] else None}
        p["today"] = bool(at and at >= day_start)
        p["due_local"] = local_time(_epoch(p["due"]), tz) if p["due"] else ""
        teams.setdefault(p["team"], []).append(p)
    out = []
    for team, pts in teams.items():
        pts.sort(key=lambda p: (POINT_ORDER.get(p["state"], 2), p["due"] or "", p["id"]))
        out.append({"team": team, "points": pts, "overdue": sum(p["state"] == "overdue" for p in pts),
                    "visited": sum(p["today"] for p in pts), "total": len(pts)})
    return sorted(out, key=lambda t: (-t["overdue"], t["team"]))


def _epoch(iso: str | None) -> float | None:
    return parse_iso(iso) if iso else None


def camera_panel(engine: Engine, site: str, device: str, camera: str, tz: str) -> dict[str, Any] | None:
    """One camera for the map's panel: its zones and frame size, its latest alarms, the newest
    alarm snapshot to draw the zones over."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(devices.c.inventory).where(devices.c.site == site, devices.c.device == device)).scalar()
        cam = next((c for c in _load(row).get("cameras") or [] if c["id"] == camera), None)
        if cam is None:
            return None
        mine = (alarms.c.site == site, alarms.c.device == device, alarms.c.camera == camera)
        recent = [dict(r) for r in conn.execute(sa.select(alarms.c.id, alarms.c.type, alarms.c.zone, alarms.c.state,
                                                          alarms.c.started_at, alarms.c.count)
                                                .where(*mine).order_by(alarms.c.started_at.desc()).limit(8)).mappings()]
        snap = conn.execute(sa.select(alarms.c.id).join(media, sa.and_(media.c.event_id == alarms.c.event_id,
                                                                       media.c.kind == "snapshot"))
                            .where(*mine).order_by(alarms.c.started_at.desc()).limit(1)).scalar()
    for a in recent:
        a["started"] = local_time(a.pop("started_at"), tz)
    return {"site": site, "device": device, "camera": cam, "alarms": recent, "snapshot_alarm": snap}
