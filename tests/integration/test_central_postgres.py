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
