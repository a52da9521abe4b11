"""The console's store contract on a real PostgreSQL (Debian's, started by the fixture)."""

from __future__ import annotations

import pytest


from edge_agent.central.store import Store  # noqa: E402
from tests.unit.test_central_store import run_store_contract  # noqa: E402

pytestmark = pytest.mark.integration


def test_store_contract_postgres(postgres):
    store = Store.open(postgres.fresh_db())
    try:
        run_store_contract(store)
        store.migrate()  # a second start finds the schema at head and changes nothing
    finally:
        store.close()


def test_chunks_contract_postgres(postgres):
    from tests.unit.test_central_chunks import run_chunks_contract

    store = Store.open(postgres.fresh_db())
    try:
        run_chunks_contract(store)
    finally:
        store.close()


def test_two_consumers_committing_the_last_two_chunks_assemble_once(postgres):
    """Chunks 1 and 2 of 3 reach two processes at once: the second waits for the first's commit and
    then sees every part, so exactly one assembles (without the lock both would count 2 of 3)."""
    import threading

    from edge_agent.central import chunks
    from tests.unit.test_central_chunks import DATA, T0, add, manifest, part

    store = Store.open(postgres.fresh_db())
    try:
        add(store, chunks.MANIFEST, manifest())
        add(store, 0, part(DATA, 0))
        results: list[chunks.Assembled | None] = []
        with store.engine.begin() as first:
            chunks.lock(first, [("ev1", "clip")])
            results.append(chunks.add(first, "ev1", "clip", 1, part(DATA, 1), T0))
            second = threading.Thread(target=lambda: results.append(add(store, 2, part(DATA, 2))))
            second.start()
            second.join(1.0)
            assert second.is_alive(), "the second consumer did not wait for the first one's lock"
        second.join(30)
        assert results[0] is None and results[1] is not None and results[1].data == DATA
    finally:
        store.close()
