"""Chunked media assembled in the shared database: whichever consumer commits the last part writes the file.

With several `central serve` processes on one shared subscription, the chunks of one clip reach
different processes. Each part (the manifest as idx -1, chunk i as idx i) is inserted in the
ingest's transaction while that transaction holds a lock on the media (PostgreSQL's
`pg_advisory_xact_lock`, released at commit; SQLite lets one writer in at a time anyway), and the
parts are counted after the insert. So of two consumers committing the last two chunks, the
second waits for the first to commit and then sees both: exactly one assembles, none misses.
The assembling transaction deletes the parts and records the media row before it commits.
A batch locks all its media first, in sorted order, so that two consumers cannot deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from ..publish.central import parse_manifest
from .schema import media_chunks

MANIFEST = -1  # the manifest's idx; chunks count from 0
MAX_CHUNKS = 100_000  # 12 GB at the default 128 kB per chunk: a larger index is a forged topic


@dataclass(frozen=True)
class Assembled:
    manifest: dict[str, Any]
    data: bytes  # all parts joined, not yet checked against the manifest


def lock(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    """Hold each (event_id, media) until the transaction ends, always in the same order."""
    names = sorted({f"media/{event_id}/{media}" for event_id, media in keys})
    if conn.dialect.name != "postgresql" or not names:
        return  # SQLite: the first write of a transaction locks the whole database
    # one round trip; unnest yields the array in its order, so the locks are taken sorted
    conn.execute(sa.text("SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(CAST(:names AS text[])) AS k"),
                 {"names": names})


def _where(event_id: str, media: str) -> sa.ColumnElement[bool]:
    return sa.and_(media_chunks.c.event_id == event_id, media_chunks.c.media == media)


def add(conn: Connection, event_id: str, media: str, idx: int, payload: bytes, now: float) -> Assembled | None:
    """Store one part (a resent one changes nothing); all parts joined once the last is here.

    The caller holds the media's lock (`lock`). A manifest with a new sha256 or chunk size replaces
    the old parts: the box sent different bytes under the same name, or cut them again smaller for
    a broker's limit (publish/pump.py)."""
    where = _where(event_id, media)
    if idx == MANIFEST:
        old = conn.execute(sa.select(media_chunks.c.data).where(where, media_chunks.c.idx == MANIFEST)).scalar()
        if old is not None and _cut(parse_manifest(old)) != _cut(parse_manifest(payload)):
            conn.execute(media_chunks.delete().where(where))
    insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(media_chunks)
    conn.execute(insert.values(event_id=event_id, media=media, idx=idx, data=payload, received_at=now)
                 .on_conflict_do_nothing(index_elements=["event_id", "media", "idx"]))
    head, have = conn.execute(sa.select(
        sa.select(media_chunks.c.data).where(where, media_chunks.c.idx == MANIFEST).scalar_subquery(),
        sa.select(sa.func.count()).where(where, media_chunks.c.idx >= 0).scalar_subquery())).one()
    manifest = parse_manifest(head) if head is not None else None
    if manifest is None or have < int(manifest["chunks"]):
        return None
    n = int(manifest["chunks"])
    parts = conn.execute(sa.select(media_chunks.c.idx, media_chunks.c.data).where(
        where, media_chunks.c.idx.between(0, n - 1)).order_by(media_chunks.c.idx)).all()
    if len(parts) < n:
        return None  # an index past the manifest's count (a forged topic) filled the count
    data = b"".join(p.data for p in parts)
    conn.execute(media_chunks.delete().where(where))
    return Assembled(manifest, data)


def _cut(manifest: dict[str, Any] | None) -> tuple[Any, Any]:
    m = manifest or {}
    return m.get("sha256"), m.get("chunk_size")


def prune(conn: Connection, before: float) -> int:
    """Parts of media that never completed (the box dropped it), older than `before`."""
    return conn.execute(media_chunks.delete().where(media_chunks.c.received_at < before)).rowcount
