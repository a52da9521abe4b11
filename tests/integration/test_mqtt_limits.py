"""The MQTT link respects the broker's limits (issue 14, fault 2), against a real mosquitto.

A clip chunked bigger than the broker takes must neither wedge the link nor hold back the alarms
queued behind it: under MQTT 5 mosquitto's `max_packet_size` is announced in CONNACK and never
exceeded; its `message_size_limit` (a PUBACK 0x95 that paho cannot parse, so a dropped
connection) and, under 3.1.1, `max_packet_size` (a dropped connection) are found by the drops
themselves. Alarms are counted twice: in central's output (de-duplicated, exactly once each) and
raw on the wire (a handful of QoS 1 resends at most, not the dozens of an endless reconnect loop).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

import pytest

from edge_agent.publish.chunks import chunked_rows
from edge_agent.publish.outbox import Outbox, Row
from edge_agent.publish.publisher import MqttSink
from tests.fixtures.mosquitto import Probe, mqtt_settings, sample_event, sample_media

ALARMS = "edge/site1/dev1/alarms"
LATER = range(2, 7)  # the alarms raised while the oversized clip is stuck


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def clip_then_alarms(broker, central_factory, tmp_path, protocol: str, **kw):
    """Alarm 1 with a clip of about 8 chunks (over the limit), then five alarms raised once the
    clip is on the wire; the window of 4 unacknowledged messages is smaller than the clip."""
    media = sample_media(frames=8)  # noise: about 67 KB a frame
    assert len(media["clip"]) > 6 * 64 * 1024
    first, events, stats = first_then_alarms(broker, central_factory, tmp_path, protocol, sample_event(1), media, **kw)
    return first, media, events, stats


def first_then_alarms(broker, central_factory, tmp_path, protocol: str, first, media, **kw):
    """`first` (over the broker's limit, or with media that is), then five alarms raised once it is
    on the wire: each arrives once at central, the five with a handful of raw copies at most."""
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", protocol=protocol, max_inflight=4, **kw)
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    probe = Probe(broker.port, ALARMS)
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        first = sink.emit(first, media)
        assert wait_for(lambda: sink.outbox.inflight() > 0 or sink.outbox.depth() == 0, 10)
        later = [sink.emit(sample_event(i), {}) for i in LATER]
        assert central.wait_complete(1 + len(later), timeout=40), (central.lines, sink.stats())
        probe.stop()
        stats = sink.stats()
    finally:
        sink.close(2)
    events = central.events()
    for ev in [first, *later]:
        assert [(e["event_id"], e["phase"]) for e in events].count((ev.event_id, "start")) == 1
    raw = [e["event_id"] for e in probe.json(ALARMS)]
    for ev in later:
        assert 1 <= raw.count(ev.event_id) <= 4, (ev.event_id, raw.count(ev.event_id))
    return first, events, stats


def assert_clip_whole(tmp_path, first, media) -> None:
    clip = tmp_path / "central" / "media" / first.event_id / "clip.mp4"
    assert clip.is_file()
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == hashlib.sha256(media["clip"]).hexdigest()


def assert_each_drop_counted_and_logged_once(stats: dict, at_least: int) -> None:
    """Issue 14 fault 5: one log line per distinct problem per 5 minutes, not one per drop; health
    counts every drop. (paho names the drop `Protocol error` or `Unspecified error`.)"""
    drops = {k: v for k, v in stats["problems"].items() if k.startswith("disconnected")}
    assert sum(v["seen"] for v in drops.values()) >= at_least, stats["problems"]
    assert all(v["logged"] == 1 for v in drops.values()), stats["problems"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_max_packet_size_neither_wedges_the_link_nor_loses_the_clip(protocol, mosquitto_factory, central_factory,
                                                                     tmp_path):
    broker = mosquitto_factory(max_packet_size=40_000)
    first, media, _, stats = clip_then_alarms(broker, central_factory, tmp_path, protocol)
    assert_clip_whole(tmp_path, first, media)
    assert stats["rechunked"] >= 1
    if protocol == "5":  # announced in CONNACK: nothing over it was ever sent, nothing was refused
        assert stats["max_packet_size"] == 40_000 and stats["poison"] == 0 and stats["problems"] == {}
    else:  # 3.1.1 announces nothing: found by the connection the broker dropped
        assert stats["poison"] >= 1 and stats["chunk_cap"] <= 40_000


def test_message_size_limit_under_mqtt5_is_found_and_the_clip_cut_smaller(mosquitto_factory, central_factory,
                                                                             tmp_path):
    broker = mosquitto_factory(message_size_limit=20_000)
    first, media, _, stats = clip_then_alarms(broker, central_factory, tmp_path, "5")
    assert_clip_whole(tmp_path, first, media)
    assert stats["poison"] >= 1 and stats["chunk_cap"] <= 20_000
    assert_each_drop_counted_and_logged_once(stats, at_least=2)

def test_a_clip_no_chunk_size_gets_through_is_dropped_and_announced(mosquitto_factory, central_factory, tmp_path):
    """A limit below the smallest chunk (1 KiB): the clip and snapshot cannot go, the alarm and its
    `update` with details.dropped do, and the alarms behind it too."""
    broker = mosquitto_factory(message_size_limit=900)
    first, _, events, stats = clip_then_alarms(broker, central_factory, tmp_path, "5")
    dropped = [e for e in events if e["event_id"] == first.event_id and e["phase"] == "update"]
    assert sorted(k for e in dropped for k in e["details"]["dropped"]) == ["clip", "snapshot"]
    assert stats["rejected"]["clip"] == 1 and stats["rejected"]["snapshot"] == 1
    assert_each_drop_counted_and_logged_once(stats, at_least=4)


def test_the_default_chunk_fits_a_128_kb_limit_that_mqtt311_cannot_report(mosquitto_factory, central_factory,
                                                                          tmp_path):
    """AWS IoT Core's 128 KB: under 3.1.1 mosquitto acknowledges an oversized payload and discards
    it, so nothing tells the agent; the default chunk must fit. The old 128 KiB default did not."""
    broker = mosquitto_factory(message_size_limit=128_000)
    media = {"clip": sample_media(frames=4)["clip"]}
    assert len(media["clip"]) > 128_000
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", protocol="3.1.1")
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        first = sink.emit(sample_event(1), media)
        assert central.wait_complete(1, timeout=20), central.lines
    finally:
        sink.close(2)
    assert_clip_whole(tmp_path, first, media)


def test_rows_chunked_at_128k_by_the_previous_release_are_cut_again(mosquitto_factory, central_factory, tmp_path):
    """An outbox left by the previous release (128 KiB chunks) on a box now behind a 100 KB limit
    under 3.1.1: re-chunked at the configured size on delivery, the clip arrives whole."""
    broker = mosquitto_factory(message_size_limit=100_000)
    cfg = mqtt_settings(broker, tmp_path / "outbox.sqlite", protocol="3.1.1")
    media = sample_media(frames=4)
    ev = sample_event(1)
    topic = f"{ALARMS}/{ev.event_id}/clip"
    old = Outbox(tmp_path / "outbox.sqlite", 512 * 1024 * 1024)
    old.put_event(ev.event_id, ev.to_json(), [Row("event", ALARMS, ev.to_json().encode()),
                                              *chunked_rows(topic, ev.event_id, "clip", media["clip"], 128 * 1024, 1)])
    old.close()
    central = central_factory(cfg, tmp_path / "central")
    central.wait_connected()
    sink = MqttSink(cfg, "site1", "dev1").start()
    try:
        path = tmp_path / "central" / "media" / ev.event_id / "clip.mp4"
        assert wait_for(path.is_file, 20), central.lines
        assert sink.stats()["rechunked"] == 1
    finally:
        sink.close(2)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(media["clip"]).hexdigest()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_an_event_json_over_the_limit_arrives_trimmed_and_flagged_and_the_alarms_behind_it_too(
        protocol, mosquitto_factory, central_factory, tmp_path):
    """An alarm whose own JSON is over `message_size_limit` (30 kB of details): under MQTT 5 the
    broker's refusal (2 drops) isolates it; under 3.1.1, where mosquitto discards it without a
    word, the chunk size the docs ask for (below the limit) is the limit the agent keeps. Either
    way the alarm arrives once, trimmed and flagged, with every field but the big detail; its
    full JSON stays in the outbox; the alarms raised behind it arrive too (it used to be retried
    every 60 s for ever under MQTT 5 and lost without a trace under 3.1.1)."""
    broker = mosquitto_factory(message_size_limit=20_000)
    kw = {"chunk_size": 16 * 1024} if protocol == "3.1.1" else {}
    objects = [{"id": i, "label": "person", "bbox": [0.1234, 0.2345, 0.3456, 0.4567]} for i in range(450)]
    big = sample_event(1).model_copy(update={"details": {"objects": objects, "member": "guard-7"}})
    assert 20_000 < len(big.to_json()) < 64 * 1024  # over the broker's limit, under the default chunk
    _, events, stats = first_then_alarms(broker, central_factory, tmp_path, protocol, big, {}, **kw)
    got = next(e for e in events if e["event_id"] == big.event_id and e["phase"] == "start")
    assert got["details"] == {"member": "guard-7", "trimmed": {"bytes": len(big.to_json()), "dropped": ["objects"]}}
    assert (got["zone"], got["track_id"], got["bbox"]) == (big.zone, big.track_id, big.bbox)
    assert stats["trimmed"] == 1 and stats["outbox_depth"] == 0
    if protocol == "5":
        assert stats["poison"] >= 1  # found by the broker's refusal, not guessed
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert [json.loads(j) for (j,) in db.execute("SELECT json FROM trimmed")] == [json.loads(big.to_json())]
