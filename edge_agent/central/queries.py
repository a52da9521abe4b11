"""What the console pages read: the alarm list, one alarm, the daily report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import av
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .schema import alarms, audit, media

FILTERS = ("site", "camera", "type", "state")
OPEN_STATES = ("new", "acknowledged", "assigned")


def local_time(epoch: float | None, tz: str) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def list_alarms(engine: Engine, filters: dict[str, str], now: float, escalate_after_s: float, tz: str,
                limit: int = 300) -> list[dict[str, Any]]:
    """Open alarms (or those of the `state` filter), highest priority first, then newest."""
    q = sa.select(alarms)
    for key in FILTERS:
        if filters.get(key):
            q = q.where(alarms.c[key] == filters[key])
    if not filters.get("state"):
        q = q.where(alarms.c.state.in_(OPEN_STATES))
    q = q.order_by(alarms.c.priority, alarms.c.started_at.desc()).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    return [present(r, now, escalate_after_s, tz) for r in rows]


def present(row: dict[str, Any], now: float, escalate_after_s: float, tz: str) -> dict[str, Any]:
    """An alarm row as the pages show it: local times and whether it has escalated."""
    return {**row, "started": local_time(row["started_at"], tz), "last": local_time(row["last_seen"], tz),
            "escalated": row["state"] == "new" and now - row["started_at"] > escalate_after_s,
            "age_s": max(0.0, now - row["started_at"])}


def filter_values(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {key: [v for v in conn.execute(sa.select(alarms.c[key]).distinct().order_by(alarms.c[key])).scalars()]
                for key in ("site", "camera", "type")}


def media_row(engine: Engine, event_id: str, kind: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(media).where(media.c.event_id == event_id, media.c.kind == kind)).mappings().first()
        return dict(row) if row else None


def latest_fresh_snapshot(engine: Engine, alarm_id: int) -> dict[str, Any] | None:
    """The newest answer to a "fresh picture" request whose image has arrived."""
    with engine.connect() as conn:
        replies = conn.execute(sa.select(audit.c.detail, audit.c.at).where(
            audit.c.alarm_id == alarm_id, audit.c.action == "snapshot_reply").order_by(audit.c.id.desc())).all()
    for detail, at in replies:
        snap_id = (json.loads(detail or "{}").get("result") or {}).get("snapshot_id")
        if snap_id and media_row(engine, snap_id, "snapshot"):
            return {"snapshot_id": snap_id, "at": at}
    return None


@lru_cache(maxsize=1024)
def video_codec(path: str) -> str | None:
    """The clip's codec: Debian's chromium plays H.264 but not H.265, which the page then says."""
    try:
        with av.open(path) as container:
            return container.streams.video[0].codec_context.name if container.streams.video else None
    except (av.error.FFmpegError, OSError, IndexError):
        return None


def daily_report(engine: Engine, day: str, tz: str) -> list[dict[str, Any]]:
    """Alarms (with their repeats) started on `day` (YYYY-MM-DD, site time), per camera and zone,
    counted by disposition: the zones that raise false alarms and nuisance are the ones to tune."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=ZoneInfo(tz))
    lo, hi = start.timestamp(), (start + timedelta(days=1)).timestamp()
    disposition = sa.func.coalesce(alarms.c.disposition, "open")
    q = (sa.select(alarms.c.camera, alarms.c.zone, disposition.label("disposition"),
                   sa.func.count().label("alarms"), sa.func.sum(alarms.c.count).label("events"))
         .where(alarms.c.started_at >= lo, alarms.c.started_at < hi)
         .group_by(alarms.c.camera, alarms.c.zone, disposition))
    table: dict[tuple[str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for camera, zone, disp, n_alarms, n_events in conn.execute(q):
            row = table.setdefault((camera, zone or "-"), {"camera": camera, "zone": zone or "-", "alarms": 0,
                                                           "events": 0, "by": {}})
            row["alarms"] += n_alarms
            row["events"] += int(n_events or 0)
            row["by"][disp] = row["by"].get(disp, 0) + n_alarms
    return sorted(table.values(), key=lambda r: (-r["alarms"], r["camera"], r["zone"]))
