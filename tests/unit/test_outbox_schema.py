"""The outbox's layout version: an outbox of the first release is migrated on open and its messages
kept; one written by a newer release is refused, not guessed at."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from edge_agent.errors import EdgeAgentError
from edge_agent.publish.outbox import Outbox
from edge_agent.publish.outbox_schema import _SCHEMA, SCHEMA_VERSION

# The first release's layout: today's without the column migration 2 adds (the only difference, as
# `git show 7c7f452^:edge_agent/publish/outbox.py` shows), and unversioned.
FIRST_RELEASE = _SCHEMA.replace(",\n    retry_at REAL\n", "\n")
assert "retry_at" not in FIRST_RELEASE


def first_release_outbox(path: Path, rows: list[tuple[int, str, str | None, str | None, str, bytes]]) -> Path:
    """(priority, kind, event_id, media, topic, payload) rows as the first release wrote them."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(FIRST_RELEASE)
    db.executemany("INSERT INTO messages (priority, kind, event_id, media, topic, payload, qos, created)"
                   " VALUES (?, ?, ?, ?, ?, ?, 1, ?)", [(*r, time.time()) for r in rows])
    db.commit()
    db.close()
    return path


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_first_release_outbox_is_migrated_and_keeps_its_messages(tmp_path):
    path = first_release_outbox(tmp_path / "outbox.sqlite", [
        (0, "event", "ev-1", None, "edge/s/d/alarms", b'{"event_id":"ev-1"}'),
        (2, "chunk", "ev-1", "clip", "edge/s/d/alarms/ev-1/clip/0", b"x" * 1000),
    ])
    box = Outbox(path, 10_000_000)
    try:
        assert user_version(path) == SCHEMA_VERSION
        msgs = box.claim(10)
        assert [(m.kind, m.event_id, m.payload[:12]) for m in msgs] == [
            ("event", "ev-1", b'{"event_id":'), ("chunk", "ev-1", b"x" * 12)]
        assert box.media_bytes() == 1000
        for _ in range(3):  # refusals use the column the migration added
            box.fail(msgs[0].seq)
            box.release()
        assert box.depth() == 2  # event JSON is never given up
        box.ack([m.seq for m in msgs])
        assert box.depth() == 0
    finally:
        box.close()


def test_new_outbox_is_stamped_and_reopening_changes_nothing(tmp_path):
    path = tmp_path / "outbox.sqlite"
    Outbox(path, 1000).close()
    assert user_version(path) == SCHEMA_VERSION
    Outbox(path, 1000).close()
    assert user_version(path) == SCHEMA_VERSION


def test_outbox_of_a_newer_release_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "outbox.sqlite"
    Outbox(path, 1000).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(EdgeAgentError) as err:
        Outbox(path, 1000)
    assert str(path) in str(err.value) and "newer release" in str(err.value)
    assert user_version(path) == SCHEMA_VERSION + 1
