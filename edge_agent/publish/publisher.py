"""`MqttSink`: the EventSink that publishes through the durable outbox.

`emit` writes the event JSON, media manifests and chunks to the outbox in one transaction and
returns at once; a pump thread drains the outbox to the broker with at most `max_inflight`
messages unacknowledged and deletes each message on its PUBACK. Commands arrive on
`<base>/cmd/<name>` and are answered on `<base>/cmd/reply` from a worker thread.

    sink = MqttSink.from_config(cfg, clock); sink.start()
    sink.emit(event, {"snapshot": jpeg, "clip": mp4}); ...; sink.close(flush_timeout=5)
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from typing import Any, Mapping

from ..alarms.event import Event, EventContext, MediaRef
from ..alarms.sink import CONTENT_TYPES
from ..clock import Clock, SystemClock, iso_utc
from ..config.models import AgentConfig, Mqtt
from ..config.secrets import command_secret as configured_secret
from .commands import CommandDispatcher, Handler
from .mqtt import Callbacks, LinkOptions, MqttLink
from .outbox import MAX_ATTEMPTS, REFUSED_RETRY_S, Outbox, Row
from .topics import Topics, chunk_topic

log = logging.getLogger("edge_agent.publish")

PRUNE_EVERY_S = 30.0
PUMP_ERROR_LOG_S = 300.0  # a pump error that repeats is logged with its traceback this often


def media_rows(topics: Topics, event: Event, kind: str, data: bytes, chunk_size: int, qos: int) -> tuple[MediaRef, list[Row]]:
    """The MediaRef for the event and the manifest + chunk messages that carry `data`."""
    manifest_topic = topics.media_manifest(event.type, event.event_id, kind)
    old = getattr(event, kind, None)
    extra = {} if old is None else {"start": old.start, "duration_s": old.duration_s}
    ref = MediaRef.for_bytes(data, CONTENT_TYPES[kind], topic=manifest_topic, **extra)
    return ref, chunked_rows(manifest_topic, event.event_id, kind, data, chunk_size, qos)


def chunked_rows(manifest_topic: str, media_id: str, kind: str, data: bytes, chunk_size: int, qos: int) -> list[Row]:
    """The manifest message and the raw chunks of one media file (docs/mqtt.md)."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    manifest = {
        "event_id": media_id,
        "media": kind,
        "content_type": CONTENT_TYPES[kind],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chunk_size": chunk_size,
        "chunks": len(chunks),
    }
    rows = [Row("manifest", manifest_topic, json.dumps(manifest, separators=(",", ":")).encode(), qos, media=kind)]
    rows += [Row("chunk", chunk_topic(manifest_topic, i), c, qos, media=kind) for i, c in enumerate(chunks)]
    return rows


def require_signatures(mqtt: Mqtt, secret: str | None) -> bool:
    """A configured command secret means signed commands only, unless `require_signed_commands:
    false` is written out: a secret that unsigned commands can bypass protects nothing."""
    if "require_signed_commands" in mqtt.model_fields_set or not secret:
        if secret and not mqtt.require_signed_commands:
            log.warning("mqtt.command_secret is set but require_signed_commands is false: "
                        "anyone who can publish to the broker can command this box")
        return mqtt.require_signed_commands
    return True


class MqttSink:
    """Durable, non-blocking publisher of events, media, health, retained state and command replies."""

    def __init__(
        self,
        mqtt: Mqtt,
        site: str,
        device: str,
        clock: Clock | None = None,
        handlers: dict[str, Handler] | None = None,
        command_secret: str | None = None,
    ) -> None:
        self.cfg = mqtt
        self.clock = clock or SystemClock()
        self.topics = Topics(mqtt.topic_prefix, site, device)
        self.qos = max(1, mqtt.qos)  # the outbox needs an acknowledgement to delete
        self.outbox = Outbox(
            mqtt.outbox.path,
            int(mqtt.outbox.media_quota_mb * 1024 * 1024),
            mqtt.outbox.synchronous,
            announce=self._announce,
        )
        secret = command_secret or configured_secret(mqtt)
        self.commands = CommandDispatcher(
            handlers, secret, require_signatures(mqtt, secret), self.clock, mqtt.command_max_ttl_s, nonces=self.outbox,
            publish_media=self.publish_snapshot,
        )
        opts = LinkOptions(
            client_id=mqtt.client_id or f"edge-agent-{site}-{device}",
            status_topic=self.topics.status,
            subscriptions=[self.topics.cmd_filter],
            reconnect_min_s=mqtt.reconnect_min_s,
            reconnect_max_s=max(mqtt.reconnect_min_s, mqtt.reconnect_max_s),
            session_expiry_s=mqtt.session_expiry_s,
            max_inflight=mqtt.max_inflight,
        )
        cb = Callbacks(connected=self._on_connected, published=self._on_published, message=self._on_message)
        self.link = MqttLink(mqtt, opts, cb)
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._cmds: queue.Queue[tuple[str, bytes, Any] | None] = queue.Queue(maxsize=100)
        self._mids: dict[int, int] = {}  # paho mid -> outbox seq; pump thread only
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.counts = {"emitted": 0, "outbox_errors": 0, "commands_dropped": 0, "pump_errors": 0}
        self._last_pump_error: tuple[str, float] = ("", float("-inf"))

    @classmethod
    def from_config(cls, cfg: AgentConfig, clock: Clock | None = None, handlers: dict[str, Handler] | None = None) -> MqttSink:
        return cls(cfg.mqtt, cfg.site.id, cfg.device.id, clock, handlers)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> MqttSink:
        for name, target in (("mqtt-pump", self._pump), ("mqtt-commands", self._command_worker)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.link.start()
        return self

    def close(self, flush_timeout: float = 5.0) -> bool:
        """Try to drain for up to flush_timeout s, then stop; returns True if nothing was left.

        Safe to call again (a replay closes its sinks, and its CLI closes this one on failure too).
        """
        if getattr(self, "_closed", None) is not None:
            return self._closed
        drained = self.wait_drained(flush_timeout) if self._threads else self.outbox.depth() == 0
        self._stop.set()
        self._wake.set()
        self._cmds.put(None)
        for t in self._threads:
            t.join(timeout=2)
        self.link.stop(graceful=True)
        if not drained:
            log.warning("mqtt: %d message(s) stay in the outbox %s; they go out on the next start",
                        self.outbox.depth(), self.outbox.path)
        self.outbox.close()
        self._closed = drained
        return drained

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.depth() == 0:
                return True
            time.sleep(0.02)
        return self.outbox.depth() == 0

    # -- EventSink -------------------------------------------------------------------------
    def emit(self, event: Event, media: Mapping[str, bytes]) -> Event:
        """Store the event and its media in the outbox (one transaction) and return at once."""
        refs: dict[str, MediaRef] = {}
        rows: list[Row] = []
        for kind, data in media.items():
            if kind not in CONTENT_TYPES:
                log.warning("event %s: unknown media %r not published", event.event_id, kind)
                continue
            refs[kind], more = media_rows(self.topics, event, kind, bytes(data), self.cfg.chunk_size, self.qos)
            rows += more
        event = event.model_copy(update=refs)
        text = event.to_json()
        head = Row("event", self.topics.event_topic(event.type), text.encode(), self.qos)
        try:
            dropped = self.outbox.put_event(event.event_id, text, [head, *rows])
        except sqlite3.Error:
            # Not on disk, not sent: the caller (alarms/delivery.py) keeps the event and tries
            # again, so it goes out exactly once when the disk has room again.
            self.counts["outbox_errors"] += 1
            raise
        for event_id, kinds in dropped.items():
            log.warning("media quota full: dropped %s of event %s", ", ".join(kinds), event_id)
        self.counts["emitted"] += 1
        self._wake.set()
        return event

    def _announce(self, event_json: str, kinds: list[str]) -> Row | None:
        """The `update` that tells central an event's media was dropped for the quota."""
        upd = EventContext.media_dropped(Event.from_json(event_json), self.clock.now(), kinds)
        return Row("event", self.topics.event_topic(upd.type), upd.to_json().encode(), self.qos)

    # -- other messages --------------------------------------------------------------------
    def publish_retained(self, topic_suffix: str, payload: Any) -> None:
        """Durable retained state under this device, e.g. `patrol/status/gate-3`."""
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")).encode()
        )
        self.outbox.put(Row("retained", self.topics.suffix(topic_suffix), data, self.qos, retain=True))
        self._wake.set()

    def publish_snapshot(self, snapshot_id: str, jpeg: bytes) -> str:
        """A JPEG answering the `snapshot` command, chunked like alarm media and durable in the
        outbox (a whole JPEG in one message can exceed a 128 KB broker limit); returns its manifest topic."""
        topic = self.topics.snapshot_manifest(snapshot_id)
        self.outbox.put_media(snapshot_id, chunked_rows(topic, snapshot_id, "snapshot", jpeg, self.cfg.chunk_size, self.qos))
        self._wake.set()
        return topic

    def publish_health(self, health: dict[str, Any]) -> None:
        """Periodic health JSON; QoS 0 and not stored: a stale health report is worth nothing."""
        body = dict(health)
        body.setdefault("mqtt", self.stats())
        body.setdefault("time", iso_utc(self.clock.now()))
        self.link.publish(self.topics.health, json.dumps(body, separators=(",", ":"), default=str).encode(), 0)

    def stats(self) -> dict[str, Any]:
        c = self.outbox.counters()
        return {
            "connected": self.link.connected.is_set(),
            "connects": self.link.connects,
            "last_error": self.link.last_error,
            "outbox_depth": self.outbox.depth(),
            "outbox_oldest_s": round(self.outbox.oldest_age_s(), 1),
            "outbox_events": self.outbox.pending_events(),
            "inflight": self.outbox.inflight(),
            "media_bytes": self.outbox.media_bytes(),
            "media_quota_bytes": self.outbox.quota,
            "dropped": {"clip": c.get("dropped_clip", 0), "snapshot": c.get("dropped_snapshot", 0)},
            "delivered": c.get("delivered", 0),
            # media the broker refused MAX_ATTEMPTS times (dropped, announced); event JSON it refused
            # that often (kept, retried every REFUSED_RETRY_S)
            "rejected": {"clip": c.get("rejected_clip", 0), "snapshot": c.get("rejected_snapshot", 0)},
            "refused_events": c.get("refused", 0),
            "commands": dict(self.commands.counts),
            **self.counts,
        }

    # -- pump (one thread owns mids) -------------------------------------------------------
    def _on_connected(self, session_present: bool) -> None:
        self._wake.set()

    def _on_published(self, mid: int, ok: bool, reason: str) -> None:
        # Network thread, maybe under paho's locks: only queue it, the pump does the rest.
        self._acks.put((mid, ok, reason))
        self._wake.set()

    def _pump(self) -> None:
        last_prune = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._settle_acks()
                if self.link.connected.is_set():
                    self._send(self.cfg.max_inflight - len(self._mids))
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    self.outbox.prune_meta()
                    last_prune = time.monotonic()
            except Exception as exc:  # the pump must outlive any one bad message
                self._pump_error(exc)
                time.sleep(0.5)
        self.outbox.release()

    def _pump_error(self, exc: Exception) -> None:
        """The traceback once per distinct error and PUMP_ERROR_LOG_S; a repeat in between only counts."""
        key, now = f"{type(exc).__name__}: {exc}", time.monotonic()
        self.counts["pump_errors"] += 1
        if key != self._last_pump_error[0] or now - self._last_pump_error[1] >= PUMP_ERROR_LOG_S:
            log.exception("mqtt pump error (%d so far)", self.counts["pump_errors"])
            self._last_pump_error = (key, now)

    def _settle_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, ok, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            seq = self._mids.pop(mid, None)
            if seq is None:
                continue  # status message or a reply: not from the outbox
            if ok:
                done.append(seq)
            elif self.outbox.fail(seq):
                log.error("broker refused outbox message %d %d times (%s): media is dropped, event JSON waits"
                          " %.0f s before the next try", seq, MAX_ATTEMPTS, reason, REFUSED_RETRY_S)
            else:
                log.warning("broker refused outbox message %d (%s); will retry", seq, reason)
        self.outbox.ack(done)

    def _send(self, room: int) -> None:
        for msg in self.outbox.claim(room):
            rc, mid = self.link.publish(msg.topic, msg.payload, msg.qos, msg.retain)
            if rc in (0, 4):  # 4: connection just dropped; paho keeps QoS>0 and resends it
                self._mids[mid] = msg.seq
            else:
                log.error("publish of %s failed locally (rc %d); will retry", msg.topic, rc)
                self.outbox.release([msg.seq])
                break

    # -- commands --------------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes, props: Any) -> None:
        try:
            self._cmds.put_nowait((topic, payload, props))
        except queue.Full:
            self.counts["commands_dropped"] += 1

    def _command_worker(self) -> None:
        while True:
            item = self._cmds.get()
            if item is None:
                return
            try:
                reply = self.commands.handle(*item)
                if reply is not None:
                    data = json.dumps(reply, separators=(",", ":"), default=str).encode()
                    self.link.publish(self.topics.cmd_reply, data, self.qos)
            except Exception:
                log.exception("command handling error")
