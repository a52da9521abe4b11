"""Ingest: the fleet's alarm topics into the store, acknowledged only once committed.

The MQTT link runs with `manual_ack` and a persistent session: a message is PUBACKed after the
database commit, media manifests and chunks included (they wait in the database until the last
part is there, see chunks.py). Several processes may share the fleet's messages through an MQTT 5
shared subscription (`ingest.shared_group`), each with its own session. What arrives while a
commit is under way is stored together in the next transaction (up to BATCH_MAX messages), so
one disk flush serves many alarms in a burst. While the database is down the messages wait,
unacknowledged, at the broker (mosquitto keeps up to `max_queued_messages` per client, 1000 by
default) and are stored once it is back. A malformed or oversized message is logged and
acknowledged: it can never be stored, and holding it would block the ones behind it.
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
from typing import Any, Callable

from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..alarms.event import Event
from ..clock import Clock, SystemClock
from ..config.central import CentralConfig
from ..publish.central import SAFE_ID, SUFFIX, parse_manifest, verified
from ..publish.mqtt import Callbacks, LinkOptions, MqttLink
from ..publish.topics import REPLY, Parsed, parse
from . import chunks
from .fleet import KINDS as FLEET_KINDS, Fleet
from .store import Store

log = logging.getLogger("edge_agent.central.ingest")
MAX_EVENT_BYTES = 256 * 1024  # an event JSON is a few kB; media travel as chunks
RETRY_MAX_S = 10.0
BATCH_MAX = 200  # messages per transaction when they arrive faster than one commit


@dataclass
class Outcome:
    """What one transaction did; applied only once it has committed."""

    counts: Counter[str] = field(default_factory=Counter)
    changed: bool = False


def filters(prefix: str, shared_group: str | None = None) -> list[str]:
    """Alarm events and their media, fresh pictures (`snapshot` answers), command replies and patrol
    events: with a group, as MQTT 5 shared subscriptions (the broker hands each message to one member
    of the group). The boxes' state (status, health, inventory, patrol point status: fleet.py) goes
    to every member unshared: a broker sends no retained message to a shared subscription, and
    storing the latest state twice is harmless (upserts)."""
    p = prefix.strip("/")
    share = f"$share/{shared_group}/" if shared_group else ""
    work = [f"{p}/+/+/alarms", f"{p}/+/+/alarms/+/+", f"{p}/+/+/alarms/+/+/+", f"{p}/+/+/snapshots/+/+",
            f"{p}/+/+/snapshots/+/+/+", f"{p}/+/+/cmd/{REPLY}",
            f"{p}/+/+/patrol", f"{p}/+/+/patrol/+/+", f"{p}/+/+/patrol/+/+/+"]
    state = [f"{p}/+/+/status", f"{p}/+/+/health", f"{p}/+/+/inventory"]
    if share:  # unshared, patrol/+/+ already holds the points' status
        state.append(f"{p}/+/+/patrol/status/+")
    return [share + f for f in work] + state


class Changes:
    """A counter the pages watch: it moves whenever an alarm may look different.

    The ingest thread bumps it; each open page's event stream awaits it on the web server's event
    loop (no thread per page). `announce` tells other console processes (peers.py), whose
    listeners `wake` their own pages."""

    def __init__(self, announce: Callable[[], None] | None = None) -> None:
        self.version = 0
        self.announce = announce
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def bump(self) -> None:
        self.wake()
        if self.announce is not None:
            self.announce()

    def wake(self) -> None:
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
        self.fleet = Fleet()
        self.prefix = cfg.mqtt.topic_prefix
        self.counts = {"stored": 0, "duplicates": 0, "media": 0, "dropped": 0, "db_errors": 0, "corrupt": 0,
                       "invalid": 0}
        self._inbox: queue.Queue[tuple[str, bytes, int, int] | None] = queue.Queue()
        opts = LinkOptions(client_id=client_id, subscriptions=filters(self.prefix, cfg.ingest.shared_group),
                           manual_ack=True,
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
                    self._handle_all([(t, p) for t, p, _, _ in batch], conn, out)
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
            self._handle_all([(topic, payload)], conn, out)
        self._apply(out)

    def _apply(self, out: Outcome) -> None:
        """After the commit: count, tell the pages."""
        self.counts.update({k: self.counts[k] + v for k, v in out.counts.items()})
        if out.changed:
            self.changes.bump()

    def _handle_all(self, messages: list[tuple[str, bytes]], conn: Connection, out: Outcome) -> None:
        parsed = [(parse(self.prefix, topic), topic, payload) for topic, payload in messages]
        chunks.lock(conn, [(t.event_id, t.media) for t, _, _ in parsed if _is_media(t)])
        for t, topic, payload in parsed:
            if t.kind == "event" and t.stream == "alarms":
                self._event(topic, payload, conn, out)
            elif _is_media(t):
                self._media(t, payload, conn, out)
            elif t.kind == "reply":
                self._reply(t.site, t.device, payload, conn, out)
            elif t.kind in FLEET_KINDS or t.kind == "event":  # patrol events: check-ins for the patrol board
                out.changed |= self.fleet.handle(t, topic, payload, conn, self.clock.now())

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

    def _media(self, t: Parsed, payload: bytes, conn: Connection, out: Outcome) -> None:
        """One part of a snapshot or clip; the consumer that commits the last part writes the file."""
        media_id, name = t.event_id, t.media
        manifest = parse_manifest(payload) if t.kind == "manifest" else None
        if not SAFE_ID.fullmatch(media_id) or (t.kind == "manifest" and manifest is None) \
                or t.index >= chunks.MAX_CHUNKS:
            # `..` is a valid topic level: an id that is not a plain name must never become a folder
            out.counts["invalid"] += 1
            log.warning("media part on %s/%s refused: not a plain id, a bad manifest or a bad index",
                        media_id[:80], name)
            return
        stored = self.store.media_sha(media_id, name, conn)
        if stored and (manifest is None or manifest["sha256"] == stored):
            return  # redelivered after the media was stored
        idx = chunks.MANIFEST if manifest is not None else t.index
        done = chunks.add(conn, media_id, name, idx, payload, self.clock.now())
        if done is None:
            return
        if not verified(done.manifest, done.data):
            out.counts["corrupt"] += 1
            log.error("media %s/%s failed its sha256 check; waiting for a resend", media_id, name)
            return
        rel = Path(media_id) / f"{name}{SUFFIX.get(name, '.bin')}"
        (self.media_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.media_dir / rel).write_bytes(done.data)
        self.store.record_media(media_id, name, hashlib.sha256(done.data).hexdigest(), len(done.data), str(rel),
                                self.clock.now(), conn)
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
        return {**self.counts, "queued": self._inbox.qsize(),
                "connected": self.link.connected.is_set()}


def _is_media(t: Parsed) -> bool:
    return t.kind in ("manifest", "chunk") and t.stream in ("alarms", "snapshots", "patrol")
