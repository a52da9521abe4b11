"""The console's database: events stored once, alarms grouped, media recorded, users.

SQLAlchemy Core on SQLite (default) or PostgreSQL; `Store.open` migrates to the newest Alembic
revision. Each write is one transaction: an event phase and the alarm it opens or joins commit
together, so the ingest can acknowledge the MQTT message right after `record_event` returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..alarms.event import Event
from ..clock import parse_iso
from ..config.central import Workflow
from .schema import alarms, audit, events, media, users

log = logging.getLogger("edge_agent.central.store")
MIGRATIONS = Path(__file__).parent / "migrations"
CAMERA_ALARM_PRIORITY = 5  # offline / tampered cameras: after the zone kinds the config ranks
OTHER_PRIORITY = 9


def engine_url(url: str) -> str:
    """`postgresql://` means psycopg 3 (the driver the `[central]` extra installs)."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def dedup_key(ev: Event, payload: bytes) -> str:
    """docs/mqtt.md: start/end once per event; updates once per distinct payload."""
    return f"update:{hashlib.sha256(payload).hexdigest()}" if ev.phase == "update" else ev.phase


@dataclass(frozen=True)
class Stored:
    new: bool  # False: a redelivery, nothing changed
    alarm_id: int | None
    opened: bool = False  # this phase opened a new alarm (not a repeat)


class Store:
    def __init__(self, engine: Engine, workflow: Workflow | None = None) -> None:
        self.engine = engine
        self.workflow = workflow or Workflow()

    @classmethod
    def open(cls, url: str, workflow: Workflow | None = None) -> Store:
        kw: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kw["connect_args"] = {"timeout": 30, "check_same_thread": False}
        engine = sa.create_engine(engine_url(url), **kw)
        if url.startswith("sqlite"):
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine, workflow)
        store.migrate()
        return store

    def migrate(self) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # it lists its plug-ins on import: noise
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            before = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
                if sa.inspect(conn).has_table("alembic_version") else None
            command.upgrade(cfg, "head")
            after = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if before != after:
            log.info("database schema migrated from %s to %s", before or "empty", after)

    def close(self) -> None:
        self.engine.dispose()

    # -- ingest -----------------------------------------------------------------------------
    @contextmanager
    def tx(self, conn: Connection | None = None) -> Iterator[Connection]:
        """The caller's transaction, or a new one committed on leaving."""
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as new:
                yield new

    def record_event(self, ev: Event, payload: bytes, now: float, conn: Connection | None = None) -> Stored:
        """Store one event phase; open or join an alarm on `start`. Raises on database trouble.

        Two statements for an update or end, four for a start: each is a round trip to the server."""
        with self.tx(conn) as c:
            known = None if ev.phase == "start" else c.execute(sa.select(events.c.alarm_id).where(
                events.c.event_id == ev.event_id, events.c.alarm_id.is_not(None)).limit(1)).scalar()
            insert = (pg_insert if c.dialect.name == "postgresql" else sqlite_insert)(events).values(
                event_id=ev.event_id, dedup=dedup_key(ev, payload), phase=ev.phase, received_at=now,
                payload=payload.decode("utf-8"), alarm_id=known)
            inserted = c.execute(insert.on_conflict_do_nothing(index_elements=["event_id", "dedup"])
                                 .returning(events.c.id)).first()
            if inserted is None:  # stored before: a redelivery changes nothing
                return Stored(False, None)
            if ev.phase != "start":
                return Stored(True, known)  # an update that came before its start is linked by the start
            alarm_id, opened = self._open_or_join(c, ev, now)
            c.execute(events.update().where(events.c.event_id == ev.event_id, events.c.alarm_id.is_(None))
                      .values(alarm_id=alarm_id))
            return Stored(True, alarm_id, opened)

    def _open_or_join(self, conn: Connection, ev: Event, now: float) -> tuple[int, bool]:
        """A repeat (same camera, zone, type) within the window joins the open alarm; else a new one."""
        started = parse_iso(ev.start)
        window = self.workflow.group_window_s
        repeat = conn.execute(sa.select(alarms.c.id, alarms.c.last_seen).where(
            alarms.c.site == ev.site, alarms.c.device == ev.device, alarms.c.camera == ev.camera,
            _same(alarms.c.zone, ev.zone), alarms.c.type == ev.type, alarms.c.state != "closed",
            alarms.c.last_seen >= started - window).order_by(alarms.c.last_seen.desc()).limit(1)).first()
        if repeat is not None:
            conn.execute(alarms.update().where(alarms.c.id == repeat.id).values(
                count=alarms.c.count + 1, last_seen=max(repeat.last_seen, started), updated_at=now))
            return int(repeat.id), False
        loc = f"{ev.location.lat},{ev.location.lon}" if ev.location else None
        new_id = conn.execute(alarms.insert().values(
            event_id=ev.event_id, site=ev.site, device=ev.device, camera=ev.camera, zone=ev.zone,
            zone_kind=ev.zone_kind, type=ev.type, label=ev.label, score=ev.score, started_at=started,
            last_seen=started, count=1, priority=self.priority(ev), state="new", location=loc, version=1,
            updated_at=now)).inserted_primary_key[0]
        return int(new_id), True

    def priority(self, ev: Event) -> int:
        if ev.zone_kind and ev.zone_kind in self.workflow.priority:
            return self.workflow.priority[ev.zone_kind]
        return CAMERA_ALARM_PRIORITY if ev.type.startswith("camera_") else OTHER_PRIORITY

    def media_sha(self, event_id: str, kind: str, conn: Connection | None = None) -> str | None:
        with self.tx(conn) as c:
            return c.execute(sa.select(media.c.sha256).where(media.c.event_id == event_id, media.c.kind == kind)).scalar()

    def record_media(self, event_id: str, kind: str, sha256: str, size: int, path: str, now: float,
                     conn: Connection | None = None) -> None:
        with self.tx(conn) as c:
            c.execute(media.delete().where(media.c.event_id == event_id, media.c.kind == kind))
            c.execute(media.insert().values(event_id=event_id, kind=kind, sha256=sha256, size=size,
                                            path=path, received_at=now))

    def record_reply(self, reply: dict[str, Any], now: float, conn: Connection | None = None) -> bool:
        """A box's answer to a command the console sent: audited on that alarm (False: not ours)."""
        rid = reply.get("request_id")
        if not isinstance(rid, str) or not rid.startswith("console-"):
            return False
        with self.tx(conn) as conn:
            alarm_id = conn.execute(sa.select(audit.c.alarm_id).where(
                audit.c.detail.contains(f'"request_id": "{rid}"')).limit(1)).scalar()
            if alarm_id is None:
                return False
            done = conn.execute(sa.select(audit.c.id).where(
                audit.c.alarm_id == alarm_id, audit.c.detail.contains(f'"reply_to": "{rid}"')).limit(1)).scalar()
            if done is None:  # a redelivered reply is audited once
                conn.execute(audit.insert().values(
                    alarm_id=alarm_id, at=now, user="box", action=f"{reply.get('command', 'command')}_reply",
                    detail=json.dumps({"reply_to": rid, "ok": reply.get("ok"), "error": reply.get("error"),
                                       "result": reply.get("result")})))
            return True

    # -- users ------------------------------------------------------------------------------
    def put_user(self, name: str, role: str, password_hash: str, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(users.delete().where(users.c.name == name))
            conn.execute(users.insert().values(name=name, role=role, password_hash=password_hash, created_at=now))

    def get_user(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
            return dict(row) if row else None

    def count_users(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() or 0)

    # -- reading ----------------------------------------------------------------------------
    def event_payloads(self, alarm_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(events.c.payload).where(events.c.alarm_id == alarm_id)
                                .order_by(events.c.id)).scalars()
            return [json.loads(p) for p in rows]

    def media_of(self, event_id: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(media).where(media.c.event_id == event_id)).mappings()
            return {r["kind"]: dict(r) for r in rows}


def _sqlite_pragmas(dbapi: Any, _record: Any) -> None:
    # WAL: the pages read while the ingest writes; synchronous stays FULL, so a commit the ingest
    # acknowledges to the broker is on disk.
    dbapi.execute("PRAGMA journal_mode=WAL")
    dbapi.execute("PRAGMA foreign_keys=ON")


def _same(column: sa.Column, value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value

