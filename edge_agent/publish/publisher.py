"""`MqttSink`: the EventSink that publishes through the durable outbox, and the MQTT side around it.

Three parts share one broker connection (`MqttLink`) and one outbox file:
- events (this class): `emit` writes the event JSON, media manifests and chunks to the outbox in
  one transaction and returns at once; an `OutboxPump` (pump.py) drains it to the broker;
- `state` (`StatePublisher`, state.py): retained state, the health report, snapshot media;
- commands: a `CommandWorker` (command_worker.py) runs the `CommandDispatcher` it is handed, built
  by the caller with its table of handlers (`command_dispatcher` below reads the signing policy).

    sink = MqttSink.from_config(cfg, clock, handlers).start()
    sink.emit(event, {"snapshot": jpeg, "clip": mp4}); ...; sink.close(flush_timeout=5)
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any, Mapping

from ..alarms.event import Event, EventContext, MediaRef
from ..alarms.sink import CONTENT_TYPES
from ..clock import Clock, SystemClock
from ..config.models import AgentConfig, Mqtt
from ..config.secrets import command_secret as configured_secret
from .chunks import media_rows
from .command_worker import CommandWorker
from .commands import CommandDispatcher, Handler
from .mqtt import Callbacks, LinkOptions, MqttLink
from .outbox import Outbox, Row
from .pump import OutboxPump
from .state import StatePublisher
from .topics import Topics

log = logging.getLogger("edge_agent.publish")


def require_signatures(mqtt: Mqtt, secret: str | None) -> bool:
    """A configured command secret means signed commands only, unless `require_signed_commands:
    false` is written out: a secret that unsigned commands can bypass protects nothing."""
    if "require_signed_commands" in mqtt.model_fields_set or not secret:
        if secret and not mqtt.require_signed_commands:
            log.warning("mqtt.command_secret is set but require_signed_commands is false: "
                        "anyone who can publish to the broker can command this box")
        return mqtt.require_signed_commands
    return True


def command_dispatcher(mqtt: Mqtt, handlers: dict[str, Handler] | None, clock: Clock,
                       nonces: Outbox | None = None) -> CommandDispatcher:
    """The dispatcher for `handlers` with the config's secret, signing policy and expiry limit;
    `nonces` (the outbox) remembers request ids across restarts."""
    secret = configured_secret(mqtt)
    return CommandDispatcher(handlers, secret, require_signatures(mqtt, secret), clock, mqtt.command_max_ttl_s,
                             nonces=nonces)


def open_outbox(mqtt: Mqtt, topics: Topics, clock: Clock) -> Outbox:
    """The outbox of `mqtt`, announcing media it drops with an `update` on the event's topic."""
    qos = max(1, mqtt.qos)

    def announce(event_json: str, kinds: list[str]) -> Row:
        upd = EventContext.media_dropped(Event.from_json(event_json), clock.now(), kinds)
        return Row("event", topics.event_topic(upd.type), upd.to_json().encode(), qos)

    return Outbox(mqtt.outbox.path, int(mqtt.outbox.media_quota_mb * 1024 * 1024), mqtt.outbox.synchronous,
                  announce=announce)


class MqttSink:
    """Durable, non-blocking publisher of events; owner of the link and of the parts beside it."""

    def __init__(
        self,
        mqtt: Mqtt,
        site: str,
        device: str,
        clock: Clock | None = None,
        dispatcher: CommandDispatcher | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.cfg = mqtt
        self.clock = clock or SystemClock()
        self.topics = Topics(mqtt.topic_prefix, site, device)
        self.qos = max(1, mqtt.qos)  # the outbox needs an acknowledgement to delete
        self.outbox = outbox or open_outbox(mqtt, self.topics, self.clock)
        self.data_dir = self.outbox.path.parent  # where the disk reserve goes (alarms/reserve.py)
        self.commands = dispatcher or command_dispatcher(mqtt, None, self.clock, self.outbox)
        opts = LinkOptions(
            client_id=mqtt.client_id or f"edge-agent-{site}-{device}",
            status_topic=self.topics.status,
            subscriptions=[self.topics.cmd_filter],
            reconnect_min_s=mqtt.reconnect_min_s,
            reconnect_max_s=max(mqtt.reconnect_min_s, mqtt.reconnect_max_s),
            session_expiry_s=mqtt.session_expiry_s,
            max_inflight=mqtt.max_inflight,
        )
        # The callbacks fire only once start() has started the link, when every part exists.
        cb = Callbacks(connected=lambda session_present: self.pump.wake(),
                       disconnected=lambda: self.pump.on_disconnected(),
                       published=lambda mid, ok, reason: self.pump.on_published(mid, ok, reason),
                       message=lambda topic, payload, props: self.worker.on_message(topic, payload, props))
        self.link = MqttLink(mqtt, opts, cb)
        self.pump = OutboxPump(self.outbox, self.link, mqtt.max_inflight, mqtt.chunk_size, self.qos)
        self.state = StatePublisher(self.outbox, self.link, self.topics, self.qos, mqtt.chunk_size, self.clock,
                                    self.pump.wake)
        self.worker = CommandWorker(self.commands, self.state.publish_snapshot,
                                    lambda data: self.link.publish(self.topics.cmd_reply, data, self.qos))
        self.counts = {"emitted": 0, "outbox_errors": 0}
        self._closed: bool | None = None

    @classmethod
    def from_config(cls, cfg: AgentConfig, clock: Clock | None = None,
                    handlers: dict[str, Handler] | None = None) -> MqttSink:
        """The agent's sink; the dispatcher for `handlers` is built here and handed in."""
        clock = clock or SystemClock()
        outbox = open_outbox(cfg.mqtt, Topics(cfg.mqtt.topic_prefix, cfg.site.id, cfg.device.id), clock)
        dispatcher = command_dispatcher(cfg.mqtt, handlers, clock, outbox)
        return cls(cfg.mqtt, cfg.site.id, cfg.device.id, clock, dispatcher, outbox)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> MqttSink:
        self.pump.start()
        self.worker.start()
        self.link.start()
        return self

    def close(self, flush_timeout: float = 5.0) -> bool:
        """Try to drain for up to flush_timeout s, then stop; returns True if nothing was left.

        Safe to call again (a replay closes its sinks, and its CLI closes this one on failure too).
        """
        if self._closed is not None:
            return self._closed
        drained = self.wait_drained(flush_timeout) if self.pump.started else self.outbox.depth() == 0
        self.pump.stop()
        self.worker.stop()
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
            # chunk_cap: the configured size, or less once the broker refused it (not cut twice)
            refs[kind], more = media_rows(self.topics, event, kind, bytes(data), self.pump.chunk_cap, self.qos)
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
        self.pump.wake()
        return event

    # -- health ----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The `mqtt` section of the health report (topic, file and /health alike)."""
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
            # what opening a file torn by a power cut kept and lost (outbox_repair.py), since it was made
            "recovery": {k: c.get(k, 0) for k in ("recovered_rows", "unreadable_rows", "wal_frames_lost")},
            "commands": dict(self.commands.counts),
            "max_packet_size": self.link.max_packet_size,
            "chunk_cap": self.pump.chunk_cap,
            # each distinct link problem -> times seen and times logged (once per 5 minutes at most)
            "problems": {k: dict(v) for k, v in self.link.problems.items()},
            **self.counts,
            **self.pump.counts,
            **self.worker.counts,
        }
