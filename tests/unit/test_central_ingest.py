"""The ingest's handling of one message, on SQLite: bad input is dropped with a reason and the
rest still stored; media are verified by sha256; media parts survive a restart in the spool."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

pytest.importorskip("sqlalchemy", reason="the [central] extra is not installed")

from edge_agent.central.ingest import MAX_EVENT_BYTES, Changes, Ingest  # noqa: E402
from edge_agent.central.store import Store  # noqa: E402
from edge_agent.config.central import CentralConfig  # noqa: E402
from tests.unit.test_central_store import T0, event, raw  # noqa: E402

BASE = "edge/site1/dev1/alarms"


def make(tmp_path) -> Ingest:
    cfg = CentralConfig.model_validate({"database": {"url": f"sqlite:///{tmp_path / 'c.sqlite'}"},
                                        "media": {"dir": str(tmp_path / "media")}})
    return Ingest(cfg, Store.open(cfg.database.url), Changes())


def send_media(ingest: Ingest, event_id: str, data: bytes, chunks: int, sha: str | None = None,
               upto: int | None = None) -> None:
    size = -(-len(data) // chunks)
    parts = [data[i * size:(i + 1) * size] for i in range(chunks)]
    manifest = {"chunks": chunks, "sha256": sha or hashlib.sha256(data).hexdigest(), "size": len(data)}
    ingest.handle(f"{BASE}/{event_id}/snapshot", json.dumps(manifest).encode())
    for i, part in enumerate(parts[:upto]):
        ingest.handle(f"{BASE}/{event_id}/snapshot/{i}", part)


def test_bad_messages_are_dropped_with_a_reason_and_good_ones_stored(tmp_path, caplog):
    ingest = make(tmp_path)
    good = event(1, T0)
    with caplog.at_level(logging.ERROR, "edge_agent.central.ingest"):
        ingest.handle(BASE, b"{not json")
        ingest.handle(BASE, json.dumps({"event_id": "x", "phase": "start"}).encode())
        ingest.handle(BASE, b"{" + b" " * MAX_EVENT_BYTES + b"}")
        ingest.handle(BASE, raw(good))
        ingest.handle(BASE, raw(good))
    assert ingest.counts["dropped"] == 3 and ingest.counts["stored"] == 1 and ingest.counts["duplicates"] == 1
    assert any("more than" in r.message for r in caplog.records)
    assert any("not a valid event" in r.message for r in caplog.records)


def test_media_is_verified_and_a_corrupt_one_waits_for_a_resend(tmp_path):
    ingest = make(tmp_path)
    ev = event(1, T0)
    ingest.handle(BASE, raw(ev))
    data = bytes(range(256)) * 40
    send_media(ingest, ev.event_id, data, 3, sha="0" * 64)  # arrives whole but does not match
    assert ingest.store.media_of(ev.event_id) == {} and ingest.media.counts["corrupt"] == 1
    send_media(ingest, ev.event_id, data, 3)  # the agent resends it
    row = ingest.store.media_of(ev.event_id)["snapshot"]
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "media" / row["path"]).read_bytes() == data


def test_media_parts_survive_a_restart_of_the_console(tmp_path):
    """Parts are acknowledged once spooled: a console restarted mid-media must still complete it."""
    first = make(tmp_path)
    ev = event(1, T0)
    first.handle(BASE, raw(ev))
    data = b"jpeg-bytes" * 1000
    send_media(first, ev.event_id, data, 4, upto=3)
    first.store.close()
    second = make(tmp_path)
    second.handle(f"{BASE}/{ev.event_id}/snapshot/3", data[3 * 2500:])
    assert (tmp_path / "media" / second.store.media_of(ev.event_id)["snapshot"]["path"]).read_bytes() == data
    assert not (tmp_path / "media" / ".spool" / ev.event_id / "snapshot").exists()
