"""Media parts in the database (edge_agent/central/chunks.py), on SQLite: the last part assembles,
a resent part changes nothing, a new manifest replaces old parts, stale parts are pruned.

The same contract and a race between two transactions run on PostgreSQL in
tests/integration/test_central_postgres.py.
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from edge_agent.central import chunks
from edge_agent.central.schema import media_chunks
from edge_agent.central.store import Store
from tests.unit.test_central_store import T0

DATA = bytes(range(256)) * 9  # 2,304 bytes: three chunks of 1,000


def manifest(data: bytes = DATA, parts: int = 3) -> bytes:
    return json.dumps({"chunks": parts, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}).encode()


def part(data: bytes, i: int) -> bytes:
    return data[i * 1000:(i + 1) * 1000]


def left(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(media_chunks)).scalar()


def add(store: Store, idx: int, payload: bytes, now: float = T0) -> chunks.Assembled | None:
    with store.engine.begin() as conn:
        chunks.lock(conn, [("ev1", "clip")])
        return chunks.add(conn, "ev1", "clip", idx, payload, now)


def run_chunks_contract(store: Store) -> None:
    # chunks before their manifest, one resent: nothing until the last part
    assert add(store, 2, part(DATA, 2)) is None and add(store, 0, part(DATA, 0)) is None
    assert add(store, 0, part(DATA, 0)) is None
    assert add(store, chunks.MANIFEST, manifest()) is None
    done = add(store, 1, part(DATA, 1))
    assert done is not None and done.data == DATA and done.manifest["chunks"] == 3
    assert left(store) == 0  # the assembling transaction took the parts away
    # a manifest with another sha256 drops the parts of the old one
    other = DATA[::-1]
    add(store, chunks.MANIFEST, manifest())
    add(store, 0, part(DATA, 0))
    add(store, chunks.MANIFEST, manifest(other))
    assert add(store, 1, part(other, 1)) is None and add(store, 2, part(other, 2)) is None
    assert add(store, 0, part(other, 0)).data == other
    # parts of media that never completed go after the retention time; fresh ones stay
    add(store, 0, part(DATA, 0), now=T0 - 100 * 86400)
    add(store, chunks.MANIFEST, manifest(), now=T0)
    with store.engine.begin() as conn:
        assert chunks.prune(conn, T0 - 90 * 86400) == 1
    assert left(store) == 1


def test_chunks_contract_sqlite(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        run_chunks_contract(store)
    finally:
        store.close()


def test_a_manifest_without_a_usable_count_sha_or_size_is_refused():
    from edge_agent.publish.central import parse_manifest

    for bad in (b"[1, 2]", b"{}", b'{"chunks": "x", "sha256": "ab"}', b'{"chunks": 1, "sha256": "ab", "size": "big"}',
                b"not json"):
        assert parse_manifest(bad) is None, bad
    assert parse_manifest(manifest())["chunks"] == 3
