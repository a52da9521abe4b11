"""`StatePublisher`: what the device says about itself, as opposed to the events it raises.

- retained state (`publish_retained`): the one way to put a retained message under the device's
  topic (patrol point status, an inventory): durable in the outbox, and a newer value replaces an
  undelivered older one on the same topic;
- the periodic health report (QoS 0, never stored: a stale report is worth nothing);
- the JPEG answering a `snapshot` command, chunked like alarm media.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..clock import Clock, iso_utc
from .chunks import chunked_rows
from .mqtt import MqttLink
from .outbox import Outbox, Row
from .topics import Topics


def _payload(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode()


class StatePublisher:
    def __init__(self, outbox: Outbox, link: MqttLink, topics: Topics, qos: int, chunk_size: int, clock: Clock,
                 wake: Callable[[], None]) -> None:
        self.outbox, self.link, self.topics = outbox, link, topics
        self.qos, self.chunk_size, self.clock = qos, chunk_size, clock
        self._wake = wake  # tells the pump that the outbox has something new

    def publish_retained(self, topic_suffix: str, payload: Any) -> None:
        """Durable retained state under this device, e.g. `patrol/status/gate-3` (bytes, text or JSON)."""
        self.outbox.put(Row("retained", self.topics.suffix(topic_suffix), _payload(payload), self.qos, retain=True))
        self._wake()

    def publish_snapshot(self, snapshot_id: str, jpeg: bytes) -> str:
        """A JPEG answering the `snapshot` command, chunked like alarm media and durable in the
        outbox (a whole JPEG in one message can exceed a 128 KB broker limit); returns its manifest topic."""
        topic = self.topics.snapshot_manifest(snapshot_id)
        self.outbox.put_media(snapshot_id, chunked_rows(topic, snapshot_id, "snapshot", jpeg, self.chunk_size, self.qos))
        self._wake()
        return topic

    def publish_health(self, health: dict[str, Any]) -> None:
        """The periodic health report, as built by the caller (with its `mqtt` section)."""
        body = dict(health)
        body.setdefault("time", iso_utc(self.clock.now()))
        self.link.publish(self.topics.health, json.dumps(body, separators=(",", ":"), default=str).encode(), 0)
