"""An upgrade on a box whose broker was away: alarms left in the first release's outbox are sent,
once, by this release (real mosquitto, the reference central)."""

from __future__ import annotations

import pytest

from edge_agent.publish.publisher import MqttSink
from edge_agent.publish.topics import Topics
from tests.fixtures.mosquitto import mqtt_settings, sample_event
from tests.unit.test_outbox_schema import first_release_outbox

pytestmark = pytest.mark.integration


def test_alarms_left_by_the_first_release_are_delivered_after_the_upgrade(mosquitto, central_factory, tmp_path):
    topics = Topics("edge", "site1", "dev1")
    events = [sample_event(i) for i in range(3)]
    outbox = first_release_outbox(tmp_path / "outbox.sqlite", [
        (0, "event", ev.event_id, None, topics.event_topic(ev.type), ev.to_json().encode()) for ev in events])
    cfg = mqtt_settings(mosquitto, outbox)
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        assert central.wait_complete(3, timeout=20), central.lines
        assert sink.wait_drained(10)
    finally:
        sink.close()
    received = [e["event_id"] for e in central.events()]
    assert sorted(received) == sorted(ev.event_id for ev in events)  # all of them, nothing else
