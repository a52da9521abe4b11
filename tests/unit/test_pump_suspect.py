"""Which message a dropped connection is blamed on (publish/pump.py `_dropped`).

The broker side is a stand-in here: what it did is given as acknowledgements and drops, the way
paho reports them. The real brokers' limits are in tests/integration/test_mqtt_limits.py; this
pins the race CI met there: the reset that drops the connection can also swallow the PUBACK of the
small manifest sent just before the oversized chunk, and blaming the manifest dropped a snapshot.
"""

from __future__ import annotations

import json
import threading

from edge_agent.publish.chunks import chunked_rows
from edge_agent.publish.outbox import Outbox, Row
from edge_agent.publish.pump import OutboxPump

TOPIC = "edge/s/d/alarms/e1/snapshot"


class Link:
    """What the pump asks of `MqttLink`: publish hands out mids in order."""

    max_packet_size = 0

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.connected.set()
        self.mids = iter(range(1, 1000))
        self.renewed = 0

    def publish(self, topic, payload, qos, retain):
        return 0, next(self.mids)

    def renew(self) -> None:
        self.renewed += 1


def pump_with_snapshot(tmp_path, chunk: int = 16_384) -> tuple[OutboxPump, Outbox, Link]:
    """An event (mid 1), its snapshot's manifest (mid 2) and two chunks (mids 3, 4) in flight."""
    box = Outbox(tmp_path / "o.sqlite", 10**9)
    event = json.dumps({"event_id": "e1", "phase": "start"})
    rows = [Row("event", "edge/s/d/alarms", event.encode())]
    rows += chunked_rows(TOPIC, "e1", "snapshot", bytes(range(256)) * (2 * chunk // 256), chunk, 1)
    box.put_event("e1", event, rows)
    link = Link()
    pump = OutboxPump(box, link, max_inflight=4, chunk_size=chunk, qos=1)
    pump._send(4)
    assert [m.kind for m in pump._mids.values()] == ["event", "manifest", "chunk", "chunk"]
    return pump, box, link


def settle(pump: OutboxPump, *marks: tuple[int, bool]) -> None:
    for mid, ok in marks:
        if mid < 0:
            pump.on_disconnected()
        else:
            pump.on_published(mid, ok, "")
    pump._settle_acks()


def test_a_manifest_left_at_the_head_by_lost_pubacks_is_not_blamed_for_its_chunks_size(tmp_path):
    pump, box, link = pump_with_snapshot(tmp_path)
    settle(pump, (1, True), (-1, False), (-1, False))  # the manifest's PUBACK lost in both resets
    assert pump.counts["poison"] == 1 and link.renewed == 1
    assert pump.counts["rechunked"] == 1 and pump.chunk_cap == 4096
    assert "rejected_snapshot" not in box.counters()
    pump._send(4)
    assert [m.kind for m in pump._mids.values()] == ["manifest", "chunk", "chunk", "chunk"]
    assert json.loads(next(iter(pump._mids.values())).payload)["chunk_size"] == 4096


def test_drops_with_nothing_bigger_than_the_broker_took_blame_no_message(tmp_path):
    """A flaky link, not a limit: the broker has acknowledged a packet as big as any in the window."""
    pump, box, link = pump_with_snapshot(tmp_path)
    settle(pump, (1, True), (2, True), (3, True), (-1, False), (-1, False), (-1, False))
    assert pump.counts["poison"] == 0 and link.renewed == 0
    assert "rejected_snapshot" not in box.counters() and pump.chunk_cap == 16_384


def test_a_chunk_the_broker_never_takes_is_cut_again_after_two_drops_not_one(tmp_path):
    pump, box, link = pump_with_snapshot(tmp_path)
    settle(pump, (1, True), (2, True), (-1, False))
    assert pump.counts["poison"] == 0
    settle(pump, (-1, False))
    assert pump.counts["poison"] == 1 and pump.counts["rechunked"] == 1
