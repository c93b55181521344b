"""An idle SQLite worker stays off the write lock (issue 13): its lease, its reclaim of
expired leases, its pruning and its delivery of notifications and alerts only read when
there is nothing to take, remove or send, so they succeed while another connection holds
the write lock and a producer with no busy timeout is never refused."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.store.outbox import Outbox
from deadletter.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    found = SqliteStore(tmp_path / "idle.db")
    found.migrate()
    yield found
    found.close()


def test_an_idle_workers_duties_take_no_write_lock(store: SqliteStore) -> None:
    holder = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        now = time.time()
        assert store.lease(["default"], limit=10, worker="w", now=now, lease_seconds=30) == []
        assert store.reclaim_expired(limit=10, now=now, lease_seconds=30) == []
        assert store.prune_finished("default", before=now, limit=1000) == 0
        assert store.prune_stats_minutes(now=now) == 0
        for outbox in Outbox:
            assert store.claim_deliveries(outbox, now=now, limit=50, claim_seconds=60) == []
        assert store.summarise_alerts(now=now, window=900) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_commit_of_another_connection_wakes_a_waiting_worker(store: SqliteStore) -> None:
    woken: list[bool] = []

    def wait() -> None:
        store.wait_for_work(["default"], 600.0, threading.Event())
        woken.append(True)

    waiter = threading.Thread(target=wait)
    waiter.start()
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("CREATE TABLE business (id INTEGER)")
    # Again until woken: a commit before the waiter first read the version is not news.
    deadline = time.monotonic() + 60
    while waiter.is_alive() and time.monotonic() < deadline:
        other.execute("INSERT INTO business VALUES (1)")
        waiter.join(timeout=0.05)
    other.close()
    assert woken == [True]


def test_a_commit_between_an_empty_lease_and_the_wait_wakes_it(store: SqliteStore) -> None:
    leased, committed, woken = threading.Event(), threading.Event(), threading.Event()

    def idle_worker() -> None:
        assert (
            store.lease(["default"], limit=10, worker="w", now=time.time(), lease_seconds=30) == []
        )
        leased.set()
        committed.wait(30)
        store.wait_for_work(["default"], 600.0, threading.Event())
        woken.set()

    waiter = threading.Thread(target=idle_worker, daemon=True)
    waiter.start()
    assert leased.wait(30)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("CREATE TABLE business (id INTEGER)")
    other.close()
    committed.set()
    # The commit came before the wait began: the lease's read of the version tells it.
    assert woken.wait(30)
