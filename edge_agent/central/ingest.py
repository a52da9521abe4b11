"""Ingest: the fleet's alarm topics into the store, acknowledged only once committed.

The MQTT link runs with `manual_ack` and a persistent session: a message is PUBACKed after the
database commit (events) or after its bytes are on disk (media manifests and chunks go to a
spool folder first). What arrives while a commit is under way is stored together in the next
transaction (up to BATCH_MAX messages), so one disk flush serves many alarms in a burst. While
the database is down the messages wait, unacknowledged, at the broker (mosquitto keeps up to
`max_queued_messages` per client, 1000 by default) and are stored once it is back. A malformed
or oversized message is logged and acknowledged: it can never be stored, and holding it would
block the ones behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..alarms.event import Event
from ..clock import Clock, SystemClock
from ..config.central import CentralConfig
from ..publish.central import SUFFIX, MediaAssembler
from ..publish.mqtt import Callbacks, LinkOptions, MqttLink
from ..publish.topics import REPLY, parse
from .store import Store

log = logging.getLogger("edge_agent.central.ingest")
MAX_EVENT_BYTES = 256 * 1024  # an event JSON is a few kB; media travel as chunks
RETRY_MAX_S = 10.0
BATCH_MAX = 200  # messages per transaction when they arrive faster than one commit


@dataclass
class Outcome:
    """What one transaction did; applied only once it has committed."""

    counts: Counter[str] = field(default_factory=Counter)
    media: list[tuple[str, str]] = field(default_factory=list)  # (media id, name) now stored
    changed: bool = False


def filters(prefix: str) -> list[str]:
    """Alarm events and their media, fresh pictures (`snapshot` answers) and command replies."""
    p = prefix.strip("/")
    return [f"{p}/+/+/alarms", f"{p}/+/+/alarms/+/+", f"{p}/+/+/alarms/+/+/+",
            f"{p}/+/+/snapshots/+/+", f"{p}/+/+/snapshots/+/+/+", f"{p}/+/+/cmd/{REPLY}"]


class Changes:
    """A counter the pages watch: it moves whenever an alarm may look different.

    The ingest thread bumps it; each open page's event stream awaits it on the web server's event
    loop (no thread per page)."""

    def __init__(self) -> None:
        self.version = 0
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def bump(self) -> None:
        with self._lock:
            self.version += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    async def changed(self, seen: int, timeout: float) -> int:
        """The version once it differs from `seen`, or after `timeout` seconds."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self.version == seen:
                await asyncio.wait_for(waiter[1].wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)
        return self.version


class Ingest:
    def __init__(self, cfg: CentralConfig, store: Store, changes: Changes, clock: Clock | None = None,
                 client_id: str = "edge-central-console") -> None:
        self.cfg = cfg
        self.store = store
        self.changes = changes
        self.clock = clock or SystemClock()
        self.media_dir = Path(cfg.media.dir)
        self.media = MediaAssembler(spool=self.media_dir / ".spool")
        self.prefix = cfg.mqtt.topic_prefix
        self.counts = {"stored": 0, "duplicates": 0, "media": 0, "dropped": 0, "db_errors": 0}
        self._ready: dict[tuple[str, str], bytes] = {}
        self._inbox: queue.Queue[tuple[str, bytes, int, int] | None] = queue.Queue()
        opts = LinkOptions(client_id=client_id, subscriptions=filters(self.prefix), manual_ack=True,
                           while_away="alarms wait at the broker in this console's session",
                           # what waits for a commit is held in memory: bound it (MQTT 3.1.1: the broker's
                           # max_inflight_messages does)
                           receive_maximum=BATCH_MAX,
                           reconnect_min_s=cfg.mqtt.reconnect_min_s, reconnect_max_s=cfg.mqtt.reconnect_max_s,
                           session_expiry_s=cfg.mqtt.session_expiry_s)
        self.link = MqttLink(cfg.mqtt, opts, Callbacks(
            unacked_message=lambda t, p, mid, qos: self._inbox.put((t, p, mid, qos))))
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="central-ingest", daemon=True)

    def start(self) -> Ingest:
        self._worker.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.link.stop(graceful=False)
        self._inbox.put(None)
        self._worker.join(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        """Commands to the boxes go out on the same connection (QoS 1; paho resends after a reconnect)."""
        self.link.publish(topic, payload, qos=1)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if self._store(batch):
                for _, _, mid, qos in batch:
                    self.link.ack(mid, qos)

    def _next_batch(self) -> list[tuple[str, bytes, int, int]] | None:
        """What has arrived, up to BATCH_MAX messages: one transaction (one disk flush) for all."""
        first = self._inbox.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < BATCH_MAX:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._inbox.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _store(self, batch: list[tuple[str, bytes, int, int]]) -> bool:
        """Store a batch in one transaction, retrying while the database is down; False when stopped first."""
        delay = 0.5
        while not self._stopping.is_set():
            out = Outcome()
            try:
                with self.store.engine.begin() as conn:
                    for topic, payload, _, _ in batch:
                        self._handle(topic, payload, conn, out)
            except SQLAlchemyError as exc:
                # Not acknowledged: the broker keeps them (and everything after) until we can store them.
                self.counts["db_errors"] += 1
                log.warning("database unavailable (%s); retrying in %.1f s, nothing is acknowledged meanwhile",
                            type(getattr(exc, "orig", None) or exc).__name__, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._apply(out)
            return True
        return False

    def handle(self, topic: str, payload: bytes) -> None:
        """Store one message in its own transaction; raises SQLAlchemyError when the database is unavailable."""
        out = Outcome()
        with self.store.engine.begin() as conn:
            self._handle(topic, payload, conn, out)
        self._apply(out)

    def _apply(self, out: Outcome) -> None:
        """After the commit: forget spooled parts, count, tell the pages."""
        for key in out.media:
            self._ready.pop(key, None)
            self.media.release(*key)
        self.counts.update({k: self.counts[k] + v for k, v in out.counts.items()})
        if out.changed:
            self.changes.bump()

    def _handle(self, topic: str, payload: bytes, conn: Connection, out: Outcome) -> None:
        t = parse(self.prefix, topic)
        if t.kind == "event" and t.stream == "alarms":
            self._event(topic, payload, conn, out)
        elif t.kind in ("manifest", "chunk") and t.stream in ("alarms", "snapshots"):
            self._media(t.kind, t.event_id, t.media, t.index, payload, conn, out)
        elif t.kind == "reply":
            self._reply(t.site, t.device, payload, conn, out)

    def _event(self, topic: str, payload: bytes, conn: Connection, out: Outcome) -> None:
        if len(payload) > MAX_EVENT_BYTES:
            out.counts["dropped"] += 1
            log.error("event on %s dropped: %d bytes, more than %d", topic, len(payload), MAX_EVENT_BYTES)
            return
        try:
            ev = Event.from_json(payload)
        except (ValidationError, ValueError) as exc:
            out.counts["dropped"] += 1
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            log.error("event on %s dropped: not a valid event (%s)", topic, "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in errors[:5]))
            return
        stored = self.store.record_event(ev, payload, self.clock.now(), conn)
        out.counts["stored" if stored.new else "duplicates"] += 1
        out.changed |= stored.new

    def _media(self, kind: str, media_id: str, name: str, index: int, payload: bytes, conn: Connection,
               out: Outcome) -> None:
        key = (media_id, name)
        data = self._ready.get(key)  # assembled before a database error: the retry must not lose it
        if data is None:
            if kind == "manifest":
                sha = _manifest_sha(payload)
                if sha and self.store.media_sha(media_id, name, conn) == sha:
                    return  # redelivered after we stored it
                data = self.media.manifest(media_id, name, payload)
            else:
                if self.store.media_sha(media_id, name, conn):
                    return  # a resend of a chunk whose media is already stored
                data = self.media.chunk(media_id, name, index, payload)
            if data is None:
                return
            self._ready[key] = data
        # The parts stay in the spool until the row is committed: a restart re-assembles them.
        rel = Path(media_id) / f"{name}{SUFFIX.get(name, '.bin')}"
        (self.media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.media_dir / rel).write_bytes(data)
        self.store.record_media(media_id, name, hashlib.sha256(data).hexdigest(), len(data), str(rel),
                                self.clock.now(), conn)
        out.media.append(key)
        out.counts["media"] += 1
        out.changed = True

    def _reply(self, site: str, device: str, payload: bytes, conn: Connection, out: Outcome) -> None:
        try:
            reply = json.loads(payload)
        except ValueError:
            log.error("reply from %s/%s dropped: not JSON", site, device)
            return
        if isinstance(reply, dict) and self.store.record_reply(reply, self.clock.now(), conn):
            if reply.get("ok") is False:
                log.warning("%s/%s refused command %s: %s", site, device, reply.get("command"), reply.get("error"))
            out.changed = True

    def stats(self) -> dict[str, Any]:
        return {**self.counts, **self.media.counts, "queued": self._inbox.qsize(),
                "connected": self.link.connected.is_set()}


def _manifest_sha(payload: bytes) -> str | None:
    try:
        sha = json.loads(payload).get("sha256")
    except (ValueError, AttributeError):
        return None  # the assembler reports the bad manifest
    return str(sha) if sha else None
