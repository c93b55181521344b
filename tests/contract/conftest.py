"""Contract tests run once per backend: the same test, the same expectations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deadletter.store import open_store
from deadletter.store.base import Store

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, migrated database of each backend (for tests that spawn
    processes). Fixtures are looked up by name so that SQLite tests run without a server."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    store = open_store(url)
    try:
        store.migrate()
    finally:
        store.close()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on `store_url`: a test using both sees one backend, one database."""
    opened = open_store(store_url)
    yield opened
    opened.close()
