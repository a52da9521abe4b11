"""The alarm workflow: new -> acknowledged -> assigned -> closed, every step audited.

Each change names the version the operator saw; when someone else changed the alarm since,
`Conflict` says so and nothing is written (optimistic locking). Acknowledging also sends the
signed `ack` command to the edge box (edge_agent/publish/commands.py signs it); shelving a zone
sends the `zone` command. Both are recorded in the audit trail with their request ids.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from ..config.central import DISPOSITIONS, CentralConfig
from ..publish.commands import envelope
from ..publish.topics import Topics
from .schema import alarms, audit
from .store import Store

ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "acknowledge": (frozenset({"new"}), "acknowledged"),
    "assign": (frozenset({"new", "acknowledged", "assigned"}), "assigned"),
    "close": (frozenset({"new", "acknowledged", "assigned"}), "closed"),
}
Publish = Callable[[str, bytes], None]  # (topic, payload): QoS 1 through the ingest's MQTT link


class Conflict(Exception):
    """The alarm changed since the operator loaded it."""


class Invalid(Exception):
    """The change makes no sense for this alarm (wrong state, missing disposition, ...)."""


class NotFound(Invalid):
    """There is no such alarm."""


@dataclass(frozen=True)
class Change:
    action: str
    user: str
    version: int
    assignee: str | None = None
    disposition: str | None = None
    note: str | None = None


class Workflow:
    def __init__(self, store: Store, cfg: CentralConfig, publish: Publish, now: Callable[[], float]) -> None:
        self.store = store
        self.cfg = cfg
        self.publish = publish
        self.now = now

    def apply(self, alarm_id: int, change: Change) -> dict[str, Any]:
        """Make one transition; returns the alarm as stored afterwards."""
        if change.action not in ACTIONS:
            raise Invalid(f"unknown action {change.action!r}")
        allowed, to_state = ACTIONS[change.action]
        values: dict[str, Any] = {"state": to_state}
        if change.action == "assign":
            if not change.assignee:
                raise Invalid("assign needs a patrol team")
            values["assignee"] = change.assignee
        if change.action == "close":
            if change.disposition not in DISPOSITIONS:
                raise Invalid(f"close needs a disposition: one of {', '.join(DISPOSITIONS)}")
            values.update(disposition=change.disposition, note=change.note or None)
        now = self.now()
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            if row["version"] != change.version:
                raise Conflict(f"alarm {alarm_id} was changed by someone else (now {row['state']}); reload it")
            if row["state"] not in allowed:
                raise Invalid(f"cannot {change.action} an alarm that is {row['state']}")
            done = conn.execute(alarms.update().where(alarms.c.id == alarm_id, alarms.c.version == change.version)
                                .values(version=alarms.c.version + 1, updated_at=now, **values))
            if done.rowcount != 1:  # changed between our read and our write
                raise Conflict(f"alarm {alarm_id} was changed by someone else; reload it")
            detail = {k: v for k, v in (("assignee", change.assignee), ("disposition", change.disposition),
                                        ("note", change.note)) if v}
            self._audit(conn, alarm_id, now, change.user, change.action, row["state"], to_state, detail)
            if change.action == "acknowledge":
                self._command(conn, dict(row), "ack", {"event_id": row["event_id"], "by": change.user},
                              change.user, now)
        return self.get(alarm_id)

    def shelve_zone(self, alarm_id: int, user: str, hours: float) -> dict[str, Any]:
        """Send the `zone` command that disables the alarm's zone for `hours` (a nuisance zone)."""
        if not 0 < hours <= 72:
            raise Invalid("shelve for more than 0 and at most 72 hours")
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            if not row["zone"]:
                raise Invalid("this alarm has no zone to shelve")
            args = {"camera": row["camera"], "zone": row["zone"], "enabled": False}
            self._command(conn, dict(row), "zone", args, user, self.now(), action="shelve",
                          extra={"until": self.now() + hours * 3600})
        return self.get(alarm_id)

    def reenable_due_zones(self) -> int:
        """Send `zone enabled: true` for every shelved zone whose time is up; returns how many."""
        now = self.now()
        done = 0
        with self.store.engine.begin() as conn:
            shelved = conn.execute(sa.select(audit.c.alarm_id, audit.c.detail).where(audit.c.action == "shelve")).all()
            for alarm_id, detail in shelved:
                d = json.loads(detail or "{}")
                rid = d.get("request_id", "")
                if d.get("until", now + 1) > now or conn.execute(sa.select(audit.c.id).where(
                        audit.c.action == "unshelve", audit.c.detail.contains(f'"shelved_by": "{rid}"'))).first():
                    continue
                row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().one()
                args = {**d["args"], "enabled": True}
                self._command(conn, dict(row), "zone", args, "console", now, action="unshelve",
                              extra={"shelved_by": rid})
                done += 1
        return done

    def request_snapshot(self, alarm_id: int, user: str) -> str:
        """Ask the box for a fresh picture of the alarm's camera; returns the request id."""
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            return self._command(conn, dict(row), "snapshot", {"camera": row["camera"]}, user, self.now())

    def _command(self, conn: sa.Connection, row: dict[str, Any], name: str, args: dict[str, Any], user: str,
                 now: float, action: str | None = None, extra: dict[str, Any] | None = None) -> str:
        topics = Topics(self.cfg.mqtt.topic_prefix, row["site"], row["device"])
        topic = topics.cmd(name)
        cmd = {"request_id": f"console-{uuid.uuid4().hex}", "issued_at": now, "ttl": self.cfg.workflow.ack_ttl_s,
               "args": args}
        secret = self.cfg.secret_for(row["site"], row["device"])
        payload = envelope(secret, topic, cmd) if secret else json.dumps(cmd).encode()
        self._audit(conn, row["id"], now, user, action or f"{name}_sent", None, None,
                    {"request_id": cmd["request_id"], "topic": topic, "signed": bool(secret), "args": args,
                     **(extra or {})})
        self.publish(topic, payload)
        return str(cmd["request_id"])

    @staticmethod
    def _audit(conn: sa.Connection, alarm_id: int, now: float, user: str, action: str,
               from_state: str | None, to_state: str | None, detail: dict[str, Any]) -> None:
        conn.execute(audit.insert().values(alarm_id=alarm_id, at=now, user=user, action=action,
                                           from_state=from_state, to_state=to_state,
                                           detail=json.dumps(detail) if detail else None))

    def get(self, alarm_id: int) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            return dict(row)

    def audit_of(self, alarm_id: int) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(audit).where(audit.c.alarm_id == alarm_id).order_by(audit.c.id)).mappings()
            return [dict(r) | {"detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]
