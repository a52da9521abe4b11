"""No alarm is lost while the console's database is down: the ingest acknowledges an MQTT message
only after the database commit, so what arrives during the outage stays with the broker (a
persistent session) even when the console itself is restarted before the database returns; a
console started while the database is down waits for it."""

from __future__ import annotations

import threading
import time

import pytest


import sqlalchemy as sa  # noqa: E402

from edge_agent.central.schema import alarms, events, media  # noqa: E402
from edge_agent.publish.publisher import MqttSink  # noqa: E402
from tests.fixtures.console import central_config  # noqa: E402
from tests.fixtures.mosquitto import mqtt_settings, sample_event, sample_media  # noqa: E402
from tests.fixtures.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.integration
OUTAGE_S = 30.0
SITE, DEVICE = "shore-07", "box-01"


def counts(store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in (alarms, events, media))


def test_database_outage_loses_nothing_and_stores_each_alarm_once(mosquitto, postgres, console_factory, tmp_path):
    cfg = central_config(mosquitto, postgres.fresh_db(), tmp_path, group_window_s=0)
    first = console_factory(cfg, client_id="console-outage")
    sink = MqttSink(mqtt_settings(mosquitto, tmp_path / "outbox.sqlite", topic_prefix="city"), SITE, DEVICE).start()
    snapshot = {"snapshot": sample_media(frames=2)["snapshot"]}
    try:
        sink.emit(sample_event(0, SITE, DEVICE), snapshot)
        assert wait_for(lambda: counts(first.centre.store) == (1, 1, 1), 15)

        postgres.stop()
        down = time.monotonic()
        sent = [sink.emit(sample_event(i, SITE, DEVICE), snapshot if i % 2 else {}).event_id for i in range(1, 6)]
        assert wait_for(lambda: first.centre.ingest.counts["db_errors"] > 0, 15)
        first.stop()  # the console goes too, with messages received but never acknowledged
        # ... and is started again while the database is still down: it waits for it
        started: list = []
        restart = threading.Thread(target=lambda: started.append(console_factory(cfg, client_id="console-outage")))
        restart.start()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        assert not started  # no database yet: it has not started serving
        postgres.start()
        restart.join(60)
        [second] = started
        assert wait_for(lambda: counts(second.centre.store) == (6, 6, 4), 60), counts(second.centre.store)
        time.sleep(1.0)  # anything redelivered twice would show up now
        assert counts(second.centre.store) == (6, 6, 4)
        with second.centre.store.engine.connect() as conn:
            stored = set(conn.execute(sa.select(alarms.c.event_id)).scalars())
        assert set(sent) <= stored
        assert second.centre.ingest.counts["stored"] == 5
    finally:
        sink.close(2)
        postgres.ensure_running()  # the server is shared by the session's tests
