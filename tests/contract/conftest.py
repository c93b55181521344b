"""Contract tests run once per backend: the same test, the same expectations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.store import open_store
from deadletter.store.base import Store
from tests.support.operator import Downstream, make_app

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


@pytest.fixture
def downstream() -> Downstream:
    """What the tasks of `dlq_app` depend on: healthy keys, and how often each ran."""
    return Downstream()


@pytest.fixture
def dlq_app(store_url: str, tmp_path: Path, downstream: Downstream) -> Iterator[App]:
    """An app whose tasks fail on demand, for operating on failures (tests.support.operator)."""
    app = make_app(store_url, tmp_path, downstream)
    yield app
    app.close()
