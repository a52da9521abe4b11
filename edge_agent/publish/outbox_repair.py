"""The outbox against a failing disk: a power cut that damaged it, a disk that filled.

Opening an outbox that a power cut damaged keeps every row that can be read and says what could not.

SQLite survives a power cut when the storage honours fsync; cheap SD cards and some USB disks do
not, and leave a torn page in the file or a torn tail in its WAL. SQLite then either refuses the
file ("database disk image is malformed") or, for the WAL, silently drops every frame from the
first bad checksum on. Refusing to start would stop every camera's alarms for the sake of a few
queued messages, so the outbox is checked before it is opened:

- a torn WAL tail: the frames of the current WAL generation that SQLite will not read are
  counted (their transactions are lost; SQLite keeps everything before them) and reported;
- a damaged file: it is moved aside (`<name>.damaged-<time>`, with its WAL, for a post-mortem),
  a fresh outbox is made in its place, and every row still readable is copied into it, table by
  table, stepping over the pages that cannot be read. What was kept and what was not is
  returned as a `Recovery` (logged, and counted in the outbox's counters).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .outbox_schema import migrate

log = logging.getLogger("edge_agent.publish.outbox")

TABLES = ("messages", "event_meta", "counters", "nonces", "trimmed")
WAL_MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER, FRAME_HEADER = 32, 24
# Disk space the outbox keeps free for itself: a checkpoint copies the WAL into the file before
# it can truncate the WAL, so on a disk with no room at all even dropping media cannot be written.
# Below this, the oldest media make room before a new phase is stored (as if over the quota).
FREE_RESERVE = 1 << 20
MAX_PROBES = 64  # how far past an unreadable page the salvage looks for the next readable row


@dataclass(frozen=True)
class Recovery:
    """What the check found: `problem` is None when the file itself was sound."""

    problem: str | None
    kept: dict[str, int]  # table -> rows copied into the fresh file
    unreadable: int  # rows or row ranges that could not be read
    wal_frames_lost: int  # WAL frames of the current generation SQLite will not read
    moved_to: str | None

    def counts(self) -> dict[str, int]:
        """What the outbox adds to its counters (shown in health)."""
        return {"recovered_rows": sum(self.kept.values()), "unreadable_rows": self.unreadable,
                "wal_frames_lost": self.wal_frames_lost}


def disk_free(path: Path) -> int:
    """Bytes free on the filesystem that holds the outbox file."""
    return shutil.disk_usage(path.parent).free


def disk_full(exc: BaseException) -> bool:
    """SQLITE_FULL (the disk, or the file's max_page_count) or ENOSPC under SQLite."""
    text = str(exc).lower()
    return "full" in text or "no space" in text


def torn_wal_frames(path: Path) -> int:
    """Frames of the WAL's current generation (same salt as its header) that fail their checksum
    chain, or every frame when the header itself is unreadable. Frames left over from an older
    generation (a reused WAL) are not counted: SQLite never meant to read them."""
    wal = Path(f"{path}-wal")
    try:
        data = wal.read_bytes()
    except OSError:
        return 0
    if len(data) <= WAL_HEADER:
        return 0
    magic, _, page_size = struct.unpack(">III", data[:12])
    frame = FRAME_HEADER + (page_size or 1)
    if magic not in WAL_MAGIC or page_size < 512 or page_size & (page_size - 1) or \
            _checksum(data[:24], magic, (0, 0)) != struct.unpack(">II", data[24:32]):
        return max(1, (len(data) - WAL_HEADER) // frame)
    salt = data[16:24]
    sums = struct.unpack(">II", data[24:32])
    lost = 0
    for at in range(WAL_HEADER, len(data), frame):
        chunk = data[at: at + frame]
        if len(chunk) < frame:  # a frame cut short by the power cut
            lost += 1 if chunk[8:16] == salt or len(chunk) < 16 else 0
            break
        if chunk[8:16] != salt:
            continue  # an older generation's frame
        if lost:
            lost += 1
            continue
        sums = _checksum(chunk[FRAME_HEADER:], magic, _checksum(chunk[:8], magic, sums))
        if sums != struct.unpack(">II", chunk[16:24]):
            lost += 1
    return lost


def _checksum(data: bytes, magic: int, sums: tuple[int, int]) -> tuple[int, int]:
    """SQLite's WAL checksum (https://www.sqlite.org/fileformat.html#checksum_algorithm)."""
    s0, s1 = sums
    words = struct.unpack((">" if magic & 1 else "<") + f"{len(data) // 4}I", data[: len(data) // 4 * 4])
    for i in range(0, len(words) - 1, 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def damage(path: Path) -> str | None:
    """What SQLite says is wrong with the file (None: sound). Opening it also replays a WAL."""
    try:
        db = sqlite3.connect(str(path), isolation_level=None)
        try:
            result = [str(row[0]) for row in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return None  # cannot open, locked, I/O: not damage; the outbox's own open reports it
    except sqlite3.DatabaseError as exc:  # corrupt, or not a database at all
        return str(exc)
    return None if result == ["ok"] else "; ".join(result[:3])


def _rows(db: sqlite3.Connection, table: str, columns: list[str]) -> Iterator[tuple | None]:
    """Every readable row of `table` in rowid order; None for each stretch that could not be read."""
    select = f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1"
    after, step, probes = -(2 ** 63), 1, 0
    while probes < MAX_PROBES:
        try:
            row = db.execute(select, (after,)).fetchone()
        except sqlite3.DatabaseError:
            if probes == 0:
                yield None
            after, step, probes = after + step, step * 2, probes + 1
            continue
        if row is None:
            return
        yield row[1:]
        after, step, probes = row[0], 1, 0


def salvage(damaged: Path, fresh: sqlite3.Connection) -> tuple[dict[str, int], int]:
    """Copy every readable row of `damaged` into `fresh` (already laid out); (kept per table, unreadable)."""
    kept: dict[str, int] = {}
    unreadable = 0
    try:
        src = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True, isolation_level=None)
        # a file shorter than its header says is refused outright unless the schema is writable
        src.execute("PRAGMA writable_schema=ON")
    except sqlite3.DatabaseError:
        return kept, 1
    try:
        for table in TABLES:
            try:
                have = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
            except sqlite3.DatabaseError:
                unreadable += 1
                continue
            want = {r[1] for r in fresh.execute(f"PRAGMA table_info({table})")}
            columns = [c for c in have if c in want]
            if not columns:
                continue
            insert = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            fresh.execute("BEGIN")
            for row in _rows(src, table, columns):
                if row is None:
                    unreadable += 1
                else:
                    fresh.execute(insert, row)
                    kept[table] = kept.get(table, 0) + 1
            fresh.execute("COMMIT")
    finally:
        src.close()
    return kept, unreadable


def move_aside(path: Path) -> Path:
    """The damaged file and its WAL/SHM under a new name, kept for a post-mortem."""
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.replace(Path(f"{target}{suffix}"))
    return target


def check_and_repair(path: Path) -> Recovery | None:
    """Before the outbox opens `path`: None when it is sound (or new); else what was found and
    done. Never raises for damage: a fresh outbox with the readable rows is always left behind."""
    if not path.is_file():
        return None
    wal_lost = torn_wal_frames(path)  # before SQLite opens the file and resets its WAL
    problem = damage(path)
    if problem is None:
        if wal_lost:
            log.error("outbox %s: %d WAL frame(s) torn by a power cut were not readable; the messages "
                      "written in them are lost, every earlier one is kept", path, wal_lost)
            return Recovery(None, {}, 0, wal_lost, None)
        return None
    moved = move_aside(path)
    fresh = sqlite3.connect(str(path), isolation_level=None)
    try:
        fresh.execute("PRAGMA journal_mode=WAL")
        migrate(fresh, path)
        kept, unreadable = salvage(moved, fresh)
    finally:
        fresh.close()
    log.error("outbox %s is damaged (%s): moved to %s; kept %s, %d part(s) could not be read%s", path, problem,
              moved.name, ", ".join(f"{n} {t}" for t, n in kept.items()) or "nothing", unreadable,
              f", {wal_lost} torn WAL frame(s) lost" if wal_lost else "")
    return Recovery(problem, kept, unreadable, wal_lost, str(moved))
