"""What the outbox does with a message the broker will not take (publish/pump.py finds them).

A message the broker refuses (an MQTT 5 PUBACK reason code) is retried at once up to
MAX_ATTEMPTS times. After that, media the broker will not take is dropped whole (a partial clip
is useless) and announced like a quota drop; event JSON and retained state are never given up:
they wait REFUSED_RETRY_S before each further try (the broker's ACL may be fixed tomorrow), so a
refused alarm neither disappears nor keeps the pump in a tight loop.

Media too big for the broker's limit is cut again into smaller chunks (`recut_media`); an event
JSON too big for it is replaced by a trimmed one (`trim`), its full JSON kept in the `trimmed`
table (the last TRIMMED_KEEP of them) for whoever reads the box: nothing of the alarm is
silently lost, and the alarm itself still goes out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Callable

from .outbox_schema import Row

MAX_ATTEMPTS = 3  # refusals retried at once; then media is dropped and event JSON waits
REFUSED_RETRY_S = 60.0  # event JSON refused MAX_ATTEMPTS times is tried again this often
TRIMMED_KEEP = 100  # full JSON of trimmed events kept on the box (each at most a few hundred kB)


class Refusals:
    """Part of `Outbox` (outbox.py), which provides the connection, lock and helpers used here."""

    _db: sqlite3.Connection
    _lock: threading.RLock
    _inflight: set[int]
    time: Callable[[], float]
    _transaction: Callable[[Callable[[], object]], None]
    _drop_media: Callable[[str | None, str, str], None]
    _announce: Callable[[str | None, list[str]], None]
    _bump: Callable[[str, int], None]
    _insert: Callable[[list[Row], str | None], None]
    _recount: Callable[[], None]

    def fail(self, seq: int, at_once: bool = False) -> bool:
        """The broker refused it; True when it will not be retried at once (see the module docstring).
        `at_once`: the refusal is certain (a poison message), apply the MAX_ATTEMPTS policy now."""
        with self._lock:
            self._inflight.discard(seq)
            bump = f"MAX({MAX_ATTEMPTS}, attempts + 1)" if at_once else "attempts + 1"
            self._db.execute(f"UPDATE messages SET attempts = {bump} WHERE seq=?", (seq,))
            row = self._db.execute("SELECT attempts, kind, event_id, media FROM messages WHERE seq=?", (seq,)).fetchone()
            if row is None or row[0] < MAX_ATTEMPTS:
                return False
            attempts, kind, event_id, media = row
            def work() -> None:
                if kind in ("manifest", "chunk"):
                    self._drop_media(event_id, media, "rejected")
                    self._announce(event_id, [media])
                else:  # never give up an alarm: try again later
                    self._db.execute("UPDATE messages SET retry_at=? WHERE seq=?", (self.time() + REFUSED_RETRY_S, seq))
                    if attempts == MAX_ATTEMPTS:
                        self._bump("refused", 1)
            self._transaction(work)
            return True

    def recut_media(self, event_id: str | None, media: str,
                    cut: Callable[[bytes | None, list[tuple[str, bytes]]], list[Row] | None]) -> bool:
        """Replace one stored media file by `cut(manifest or None once sent, [(topic, chunk)])`, atomically
        (a broker's limit, an older release's rows); False while any of it is in flight or if `cut` gives None."""
        with self._lock:
            rows = self._db.execute("SELECT seq, kind, topic, payload FROM messages WHERE event_id IS ? AND media=?"
                                    " ORDER BY seq", (event_id, media)).fetchall()
            new = None if {r[0] for r in rows} & self._inflight else cut(
                next((bytes(p) for _s, k, _t, p in rows if k == "manifest"), None),
                [(t, bytes(p)) for _s, k, t, p in rows if k == "chunk"])
            if new is None:
                return False
            self._transaction(lambda: (self._db.execute("DELETE FROM messages WHERE event_id IS ? AND media=?",
                                                        (event_id, media)), self._insert(new, event_id)))
            self._recount()
        return True


    def trim(self, seq: int, payload: bytes, full: bytes) -> None:
        """Send `payload` (the event trimmed for the broker's limit) in place of message `seq`, and
        keep `full`, its whole JSON, among the last TRIMMED_KEEP trimmed events; counted `trimmed`."""
        def work() -> None:
            row = self._db.execute("SELECT event_id, topic FROM messages WHERE seq=?", (seq,)).fetchone()
            if row is None:
                return
            self._db.execute("UPDATE messages SET payload=? WHERE seq=?", (sqlite3.Binary(payload), seq))
            self._db.execute("INSERT INTO trimmed (event_id, topic, json, at) VALUES (?, ?, ?, ?)",
                             (row[0], row[1], full.decode(errors="replace"), time.time()))
            self._db.execute("DELETE FROM trimmed WHERE seq <= (SELECT MAX(seq) FROM trimmed) - ?", (TRIMMED_KEEP,))
            self._bump("trimmed", 1)

        with self._lock:
            self._inflight.discard(seq)
            self._transaction(work)
