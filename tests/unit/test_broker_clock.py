"""The broker's wall clock as brokers publish it in $SYS, and the offset from it."""

from __future__ import annotations

from edge_agent.admin.brokerclock import BrokerClock, parse_broker_time
from edge_agent.clock import parse_iso


def test_the_forms_brokers_use_are_read_and_others_are_not():
    t = parse_iso("2026-12-02T01:23:45Z")
    assert parse_broker_time(b"2026-12-02 01:23:45") == t  # EMQX: naive, read as UTC
    assert parse_broker_time(b"2026-12-02T02:23:45+01:00") == t
    assert parse_broker_time(str(t).encode()) == t
    assert parse_broker_time(b"12345 seconds") is None  # mosquitto's uptime is no time
    assert parse_broker_time(b"42") is None


def test_offset_allows_for_half_the_round_trip():
    bc = BrokerClock(broker_time=1000.0, received_at=1003.1, rtt_s=0.2)
    assert abs(bc.offset_s - (-3.0)) < 1e-9  # our clock is 3 s ahead of the broker's
    assert BrokerClock().offset_s is None
