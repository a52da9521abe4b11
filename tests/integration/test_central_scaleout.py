"""Two real `edge-agent central serve` processes on one MQTT 5 shared subscription (real mosquitto)
and one real PostgreSQL; 200 simulated devices publish alarms with chunked snapshots and clips
(scripts/load_central.py, the edge's own chunking); one consumer is SIGKILLed at 40 % of the load
and restarted: every event is stored exactly once, every snapshot and clip is assembled and its
file's sha256 is the one the device computed, no parts are left behind.

Sizes here: 1,000 events (start and end of 500 alarms) from 200 devices, 100 alarms with a
snapshot and a clip (200 media files, 16 kB chunks), so that the test stays near a minute on a
shared machine; `scripts/load_central.py --kill` runs the full 10,000 events with 1,000 media alarms.
"""

from __future__ import annotations

import time

import pytest

from scripts.load_central import make_plan, run_fleet, stored

pytestmark = pytest.mark.integration


def test_two_consumers_one_killed_store_every_event_once_and_every_clip(mosquitto, postgres, tmp_path):
    plan = make_plan(devices=200, events=1_000, with_media=100)
    db = postgres.fresh_db()
    run = run_fleet(plan, mosquitto, db, tmp_path, consumers=2, kill=True, deadline=time.monotonic() + 300)
    res = stored(db, tmp_path / "media")
    assert sorted(res.events) == sorted(plan.events)  # each once: none missing, none twice
    assert res.media == {key: (sha, sha) for key, sha in plan.media.items()}  # recorded and on disk
    assert res.parts_left == 0
    # both consumers took a share (the broker's record of what it sent to each)
    sent = mosquitto.log.read_text(errors="replace")
    assert all(f"Sending PUBLISH to load-consumer-{n} " in sent for n in (0, 1)), run
