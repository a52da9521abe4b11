"""What the boxes say about themselves, into the store: status (and last will), health, inventory,
patrol point states and check-ins. The map, the health board and the patrol board read it.

Each write is part of the ingest's transaction, so the MQTT message is acknowledged only once it
is stored, like alarms. A message that cannot be understood is logged (naming the topic) and
dropped. Only a change that the pages show tells them (`True` from `handle`): a health report
every few seconds from every box must not make every open page re-read the alarm list.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ..alarms.event import Event
from ..clock import parse_iso
from ..ops.inventory import Inventory
from ..publish.topics import Parsed
from .schema import checkins, devices, patrol_points

log = logging.getLogger("edge_agent.central.fleet")
MAX_STATE_BYTES = 1024 * 1024  # an inventory of a box with many cameras and zones is tens of kB
KINDS = ("status", "health", "inventory", "patrol_status")
POINT_STATES = ("ok", "overdue", "camera_down")


def upsert(conn: Connection, table: sa.Table, keys: dict[str, Any], values: dict[str, Any],
           new_only: dict[str, Any] | None = None) -> None:
    """Insert or update one row; `new_only` columns are written only when the row is new."""
    insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table).values(
        **keys, **values, **(new_only or {}))
    conn.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=values))


def _json(topic: str, payload: bytes) -> dict[str, Any] | None:
    if len(payload) > MAX_STATE_BYTES:
        log.error("%s dropped: %d bytes, more than %d", topic, len(payload), MAX_STATE_BYTES)
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        log.error("%s dropped: not a JSON object", topic)
        return None
    return data


def camera_states(health: dict[str, Any] | None) -> dict[str, str]:
    cams = (health or {}).get("cameras") or {}
    return {str(k): str(v.get("state")) for k, v in cams.items() if isinstance(v, dict)} if isinstance(cams, dict) else {}


class Fleet:
    def handle(self, t: Parsed, topic: str, payload: bytes, conn: Connection, now: float) -> bool:
        """Store one fleet message; True when what the pages show may have changed."""
        if t.kind == "event":
            return self._checkin(topic, payload, conn)
        if not payload:  # a retained message cleared by its owner
            return False
        data = _json(topic, payload)
        if data is None:
            return False
        if t.kind == "patrol_status":
            return self._point(t, data, conn, now)
        return getattr(self, f"_{t.kind}")(t, topic, data, conn, now)

    def _device(self, t: Parsed, conn: Connection) -> dict[str, Any]:
        row = conn.execute(sa.select(devices).where(devices.c.site == t.site, devices.c.device == t.device)).mappings().first()
        return dict(row) if row else {}

    def _status(self, t: Parsed, topic: str, data: dict[str, Any], conn: Connection, now: float) -> bool:
        state = data.get("state")
        if state not in ("online", "offline"):
            log.error("%s dropped: state must be online or offline", topic)
            return False
        # A last will comes from the broker, not the box: the box was last seen before it.
        seen = {"last_seen": now}
        upsert(conn, devices, {"site": t.site, "device": t.device}, {"status": state, "status_at": now,
               **(seen if state == "online" else {})}, new_only=seen if state == "offline" else None)
        return True

    def _health(self, t: Parsed, topic: str, data: dict[str, Any], conn: Connection, now: float) -> bool:
        before = self._device(t, conn)
        upsert(conn, devices, {"site": t.site, "device": t.device},
               {"health": json.dumps(data), "health_at": now, "last_seen": now})
        old = json.loads(before["health"]) if before.get("health") else None
        return not before or camera_states(old) != camera_states(data)

    def _inventory(self, t: Parsed, topic: str, data: dict[str, Any], conn: Connection, now: float) -> bool:
        try:
            inv = Inventory.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            log.error("%s dropped: not a valid inventory (%s: %s)", topic, ".".join(str(p) for p in first["loc"]),
                      first["msg"])
            return False
        upsert(conn, devices, {"site": t.site, "device": t.device},
               {"inventory": inv.model_dump_json(by_alias=True), "inventory_at": now, "last_seen": now})
        return True

    def _point(self, t: Parsed, data: dict[str, Any], conn: Connection, now: float) -> bool:
        state = data.get("state") if data.get("state") in POINT_STATES else "unknown"
        upsert(conn, patrol_points, {"site": t.site, "device": t.device, "point": t.point},
               {"team": str(data.get("team") or "") or None, "state": state, "payload": json.dumps(data),
                "updated_at": now})
        return True

    def _checkin(self, topic: str, payload: bytes, conn: Connection) -> bool:
        """A `patrol_checkin` from the `patrol` topic; other patrol events are not shown yet."""
        try:
            ev = Event.from_json(payload)
        except (ValidationError, ValueError):
            log.error("%s: a patrol event that is not a valid event dropped", topic)
            return False
        if ev.type != "patrol_checkin" or ev.phase != "start":
            return False
        d = ev.details
        badge = d.get("badge")
        insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(checkins).values(
            event_id=ev.event_id, site=ev.site, device=ev.device, camera=ev.camera, point=str(d.get("point") or ev.zone),
            team=d.get("team"), member=d.get("member"), badge=badge if isinstance(badge, int) else None,
            at=parse_iso(ev.start))
        return conn.execute(insert.on_conflict_do_nothing(index_elements=["event_id"])).rowcount > 0
