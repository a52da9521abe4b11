"""The durable outbox: every message is on disk before it is published, and leaves only on PUBACK.

SQLite in WAL mode. One `put_event` writes an event's JSON, its media manifests and chunks in one
transaction, so a kill -9 leaves either all of them or none. `claim` hands out the next messages
in drain order (priority, then seq: event JSON and retained state first, then snapshots, then
clips; within one event JSON, manifest, chunks) and remembers them as in flight until `ack`
deletes them or `release` gives them back. In-flight marks live only in memory: after a restart
everything left is sent again, and central command drops the duplicates.

Media has a byte quota. When it is exceeded, or the disk is full, the oldest events' clips go
first, then snapshots; each drop is counted and announced by a message the `announce` callback
builds (an `update` event). Event JSON is never dropped.

What the broker refuses is handled in outbox_refused.py (retries, re-chunking, trimmed events).

The file carries its layout's version (SQLite's `user_version`). An older layout is migrated on
open, its messages kept and sent; a newer one (written by a later release, before a rollback) is
refused with a message rather than guessed at. Files from before versions were stamped have 0
and are recognised by their columns.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from ..errors import EdgeAgentError
from .outbox_repair import FREE_RESERVE, check_and_repair, disk_free, disk_full
from .outbox_refused import MAX_ATTEMPTS, REFUSED_RETRY_S, Refusals
from .outbox_schema import Message, Row, migrate

log = logging.getLogger(__name__)
WAL_PAGES = 256  # checkpoint the WAL past this many pages (1 MiB)
__all__ = ["MAX_ATTEMPTS", "REFUSED_RETRY_S", "Outbox", "Row"]

# announce(last event JSON, dropped media kinds) -> the Row that tells central, or None
Announce = Callable[[str, list[str]], "Row | None"]


class Outbox(Refusals):
    def __init__(
        self,
        path: str | Path,
        media_quota_bytes: int,
        synchronous: str = "full",
        announce: Announce | None = None,
    ) -> None:
        self.path = Path(path)
        self.quota = int(media_quota_bytes)
        self.announce = announce
        self._lock = threading.RLock()
        self._inflight: set[int] = set()
        self.time = time.time  # replaceable in tests
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a power cut may have torn the file or its WAL: keep what can be read, never refuse to run
            self.recovery = check_and_repair(self.path)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._sync = "FULL" if synchronous == "full" else "NORMAL"
            self._db.execute(f"PRAGMA synchronous={self._sync}")
            # a small WAL, truncated after checkpoints: on a full disk the WAL is what cannot grow
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_PAGES * 4096}")
            migrate(self._db, self.path)
            self._vacuums = self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
            self._media_bytes = int(
                self._db.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages WHERE kind='chunk'"
                ).fetchone()[0]
            )
        except (sqlite3.Error, OSError) as exc:
            raise EdgeAgentError(f"outbox {self.path}: cannot open ({exc})") from exc
        if self.recovery is not None:  # counted where the outbox's other counters are, for health
            for name, n in self.recovery.counts().items():
                self._bump(name, n)

    # -- writing ---------------------------------------------------------------------------
    def put_event(self, event_id: str, event_json: str, rows: Iterable[Row]) -> dict[str, list[str]]:
        """Store an event phase and its media atomically; returns {event_id: [media dropped]}.
        Disk full: the oldest media go (announced) until it fits; when none is left, the error is
        raised and delivery keeps the event, media and all, in memory until space returns."""
        rows = list(rows)
        need = sum(len(r.payload) for r in rows) + FREE_RESERVE
        with self._lock:
            while True:
                # only a file that gives dropped pages back to the disk can make room ahead
                if not self._vacuums or disk_free(self.path) >= need:
                    try:
                        return self._put_event(event_id, event_json, rows)
                    except sqlite3.OperationalError as exc:
                        if not disk_full(exc):
                            raise
                if not self._make_room():
                    return self._put_event(event_id, event_json, rows)  # raises SQLITE_FULL if it still does not fit

    def _make_room(self) -> bool:
        """Drop the oldest media file not on the wire (clips first), announced; False when none is left."""
        victim = self._db.execute(
            "SELECT event_id, media, GROUP_CONCAT(seq) FROM messages WHERE kind IN ('manifest', 'chunk')"
            " GROUP BY event_id, media ORDER BY (media = 'clip') DESC, MIN(seq)"
        ).fetchall()
        for event_id, media, seqs in victim:
            if any(int(q) in self._inflight for q in str(seqs).split(",")):
                continue
            log.warning("outbox %s: disk full; dropping the oldest %s (event %s) to make room", self.path, media,
                        event_id)
            self._give_back()  # the WAL's space first, so the drop itself can be written
            self._transaction(lambda: (self._drop_media(event_id, media, "full_dropped"),
                                       self._announce(event_id, [media])))
            self._give_back()
            return True
        return False

    def _give_back(self) -> None:
        """Return free space to the filesystem, in steps small enough for a full disk: the WAL
        moved into the file and truncated, then the file's free pages (dropped media) cut off its
        end a few at a time. Best effort: what cannot be done now is done at the next drop."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            free, before = self._db.execute("PRAGMA freelist_count").fetchone()[0], None
            while free and free != before:  # stops when nothing more is given back
                self._db.execute("PRAGMA incremental_vacuum(32)").fetchall()
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                free, before = self._db.execute("PRAGMA freelist_count").fetchone()[0], free
        except sqlite3.OperationalError as exc:
            log.debug("outbox %s: space not given back yet: %s", self.path, exc)

    def _transaction(self, work: Callable[[], object]) -> None:
        """`work` in one write transaction; on any failure nothing of it stays (the caller holds the lock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            work()
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._recount()
            raise

    def _put_event(self, event_id: str, event_json: str, rows: list[Row]) -> dict[str, list[str]]:
        dropped: dict[str, list[str]] = {}

        def work() -> None:
            self._insert(rows, event_id)
            self._db.execute("INSERT OR REPLACE INTO event_meta (event_id, json) VALUES (?, ?)", (event_id, event_json))
            dropped.update(self._enforce_quota())

        self._transaction(work)
        return dropped

    def put_media(self, media_id: str, rows: Iterable[Row]) -> None:
        """Store media that belongs to no event (a command's snapshot); the quota applies to it too."""
        rows = list(rows)
        with self._lock:
            self._transaction(lambda: (self._insert(rows, media_id), self._enforce_quota()))

    def put(self, row: Row) -> None:
        """Store one message (retained state, a command's side output).

        A retained message replaces an undelivered one on the same topic: only the latest state
        matters, and 209 patrol points changing through a long outage must not pile up."""
        def work() -> None:
            if row.retain:
                stale = [s for (s,) in self._db.execute(
                    "SELECT seq FROM messages WHERE topic=? AND retain=1 AND kind='retained'", (row.topic,)
                ) if s not in self._inflight]
                self._db.executemany("DELETE FROM messages WHERE seq=?", [(s,) for s in stale])
            self._insert([row], None)

        with self._lock:
            self._transaction(work)

    def _rollback(self) -> None:
        """Undo the open transaction; SQLite has already rolled back after some errors (SQLITE_FULL),
        and a second ROLLBACK would replace the real cause with 'no transaction is active'."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _insert(self, rows: list[Row], event_id: str | None) -> None:
        now = time.time()
        self._db.executemany(
            "INSERT INTO messages (priority, kind, event_id, media, topic, payload, qos, retain, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.priority, r.kind, event_id, r.media, r.topic, sqlite3.Binary(r.payload), r.qos, int(r.retain), now)
                for r in rows
            ],
        )
        self._media_bytes += sum(len(r.payload) for r in rows if r.kind == "chunk")

    def _enforce_quota(self) -> dict[str, list[str]]:
        """Drop whole media (clips oldest first, then snapshots) until under quota; announce each event."""
        dropped: dict[str, list[str]] = {}
        if self._media_bytes <= self.quota:
            return dropped
        candidates = self._db.execute(
            "SELECT event_id, media, MIN(seq), GROUP_CONCAT(seq) FROM messages WHERE kind IN ('manifest', 'chunk')"
            " GROUP BY event_id, media ORDER BY (media = 'clip') DESC, MIN(seq)"
        ).fetchall()
        for event_id, media, _first, seqs in candidates:
            if self._media_bytes <= self.quota:
                break
            if any(int(s) in self._inflight for s in str(seqs).split(",")):
                continue  # partly on the wire: let it finish
            self._drop_media(event_id, media, "dropped")
            dropped.setdefault(event_id, []).append(media)
        for event_id, kinds in dropped.items():
            self._announce(event_id, kinds)
        return dropped

    def _drop_media(self, event_id: str | None, media: str, counter: str) -> None:
        """Delete every stored message of one media file; caller holds the lock in a transaction."""
        size = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages WHERE event_id IS ? AND media=? AND kind='chunk'",
            (event_id, media),
        ).fetchone()[0]
        self._db.execute("DELETE FROM messages WHERE event_id IS ? AND media=?", (event_id, media))
        self._media_bytes -= int(size)
        self._bump(f"{counter}_{media}", 1)

    def _announce(self, event_id: str | None, kinds: list[str]) -> None:
        meta = self._db.execute("SELECT json FROM event_meta WHERE event_id IS ?", (event_id,)).fetchone()
        row = self.announce(meta[0], kinds) if (meta and self.announce) else None
        if row is not None:
            self._insert([row], event_id)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def _recount(self) -> None:
        self._media_bytes = int(
            self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages WHERE kind='chunk'").fetchone()[0]
        )

    # -- draining --------------------------------------------------------------------------
    def claim(self, n: int) -> list[Message]:
        """Up to n messages not yet in flight, in drain order; they are in flight from now on."""
        if n <= 0:
            return []
        with self._lock:
            seqs = [
                s
                for (s,) in self._db.execute(
                    "SELECT seq FROM messages WHERE retry_at IS NULL OR retry_at <= ? ORDER BY priority, seq LIMIT ?",
                    (self.time(), n + len(self._inflight)),
                )
                if s not in self._inflight
            ][:n]
            if not seqs:
                return []
            marks = ",".join("?" * len(seqs))
            rows = self._db.execute(
                f"SELECT seq, topic, payload, qos, retain, kind, event_id, media FROM messages WHERE seq IN ({marks})",
                seqs,
            ).fetchall()
            self._inflight.update(seqs)
        by_seq = {r[0]: Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows}
        return [by_seq[s] for s in seqs if s in by_seq]

    def ack(self, seqs: Iterable[int]) -> None:
        """Delivered (PUBACK, or sent for QoS 0): delete."""
        seqs = list(seqs)
        if not seqs:
            return
        with self._lock:
            marks = ",".join("?" * len(seqs))
            # A lost delete only means a resend that central drops as a duplicate: no fsync needed.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    size = self._db.execute(
                        f"SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages WHERE kind='chunk' AND seq IN ({marks})",
                        seqs,
                    ).fetchone()[0]
                    self._db.execute(f"DELETE FROM messages WHERE seq IN ({marks})", seqs)
                    self._bump("delivered", len(seqs))
                    self._db.execute("COMMIT")
                except BaseException:
                    # Left open, the transaction would make every later write (every alarm) fail.
                    self._rollback()
                    raise
            finally:
                self._db.execute(f"PRAGMA synchronous={self._sync}")
            # a small WAL, truncated after checkpoints: on a full disk the WAL is what cannot grow
            self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit={WAL_PAGES * 4096}")
            self._media_bytes -= int(size)
            self._inflight.difference_update(seqs)

    def release(self, seqs: Iterable[int] | None = None) -> None:
        """Not delivered after all (the client that held them is gone): claimable again."""
        with self._lock:
            if seqs is None:
                self._inflight.clear()
            else:
                self._inflight.difference_update(seqs)

    def prune_meta(self) -> None:
        """Forget event JSON kept for drop announcements once none of its media is left."""
        with self._lock:
            self._db.execute(
                "DELETE FROM event_meta WHERE event_id NOT IN"
                " (SELECT DISTINCT event_id FROM messages WHERE kind IN ('manifest', 'chunk'))"
            )

    # -- command replay protection -----------------------------------------------------------
    def remember_nonce(self, request_id: str, until: float, now: float) -> bool:
        """Keep a command's request_id until it expires, across restarts; False if already kept."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE until <= ?", (now,))
            cur = self._db.execute("INSERT OR IGNORE INTO nonces (request_id, until) VALUES (?, ?)", (request_id, until))
            return cur.rowcount == 1

    # -- health ----------------------------------------------------------------------------
    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def oldest_age_s(self) -> float:
        """Seconds the oldest message has waited (0 when empty): how far behind central is."""
        with self._lock:
            oldest = self._db.execute("SELECT MIN(created) FROM messages").fetchone()[0]
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)  # rows are stamped with time.time()

    def pending_events(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages WHERE kind='event'").fetchone()[0])

    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def media_bytes(self) -> int:
        with self._lock:
            return self._media_bytes

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {k: int(v) for k, v in self._db.execute("SELECT name, value FROM counters")}

    def close(self) -> None:
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError as exc:  # a full disk: the WAL keeps it, SQLite replays it
                log.warning("outbox %s: not checkpointed at close (%s)", self.path, exc)
            finally:
                self._db.close()
