"""The outbox's SQLite layout, its version (SQLite `user_version`) and the migrations between
releases: an outbox written by an older release is brought up to date on open with its messages
kept; one written by a newer release is refused rather than guessed at."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgeAgentError

log = logging.getLogger("edge_agent.publish.outbox")

PRIO_EVENT = 0  # event JSON, retained state, drop announcements
PRIO_MEDIA = {"snapshot": 1, "clip": 2}
SCHEMA_VERSION = 2
# version -> the statements that bring the layout before it up to it; 1 is the first release's
MIGRATIONS = {2: ["ALTER TABLE messages ADD COLUMN retry_at REAL"]}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT,
    media TEXT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at REAL
);
CREATE INDEX IF NOT EXISTS messages_order ON messages (priority, seq);
CREATE INDEX IF NOT EXISTS messages_media ON messages (event_id, media);
CREATE TABLE IF NOT EXISTS event_meta (event_id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (request_id TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trimmed (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT, topic TEXT NOT NULL,
    json TEXT NOT NULL, at REAL NOT NULL);
"""


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    event_id: str | None
    media: str | None


@dataclass(frozen=True)
class Row:
    """One message to store: kind is event|manifest|chunk|retained."""

    kind: str
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    media: str | None = None

    @property
    def priority(self) -> int:
        return PRIO_MEDIA.get(self.media or "", PRIO_EVENT) if self.kind in ("manifest", "chunk") else PRIO_EVENT


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create what a new file lacks and migrate an older layout, in one transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise EdgeAgentError(
            f"outbox {path}: written by a newer release (layout {version}; this release knows up to "
            f"{SCHEMA_VERSION}). Run that release again, or move the file aside: its messages would not be sent")
    if version == 0:  # a new file, or one from before versions were stamped
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        version = SCHEMA_VERSION if not columns or "retry_at" in columns else 1
        if not columns:
            # only possible before the first table: lets a full disk get space back from dropped
            # media (`PRAGMA incremental_vacuum` gives free pages back to the filesystem)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")  # an empty file: instant; needed once its header was written (WAL mode)
    db.executescript(_SCHEMA)  # tables and indexes a new file or an old layout lacks
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            log.info("outbox %s: migrated to layout %d", path, step)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
