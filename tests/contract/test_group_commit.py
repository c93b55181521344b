"""Group commit on every backend: concurrent enqueues of one process share a durable
commit, and each caller still gets its own outcome (store/group.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg

from deadletter.errors import InvalidArgument
from deadletter.model import NewJob
from deadletter.store.base import Store
from tests.contract.test_crash import wait_for
from tests.contract.test_store_basics import new_job
from tests.support import worker_process

THREADS = 8
Outcome = list[str] | BaseException


@contextmanager
def writes_held(store_url: str) -> Iterator[None]:
    """Another connection holds the lock an enqueue's INSERT waits for, until the end."""
    if store_url.startswith("sqlite"):
        holder = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with psycopg.connect(store_url) as conn:
        conn.execute("LOCK TABLE queue_jobs IN SHARE MODE")  # conflicts with INSERT
        yield
        conn.rollback()


def outcome(store: Store, jobs: Sequence[NewJob]) -> Outcome:
    try:
        return store.enqueue(jobs)
    except Exception as exc:
        return exc


def batched(store: Store, store_url: str, calls: Sequence[Sequence[NewJob]]) -> list[Outcome]:
    """Run `calls` so that the first commits alone while all the others queue behind it,
    then commit: the others make one batch. Each call's ids, or the error it raised."""
    group = store.group_commit
    with ThreadPoolExecutor(len(calls)) as pool, writes_held(store_url):
        first = pool.submit(outcome, store, calls[0])
        assert wait_for(lambda: group.committing, timeout=30)
        rest = [pool.submit(outcome, store, jobs) for jobs in calls[1:]]
        assert wait_for(lambda: group.queued == len(rest), timeout=30)
    return [first.result(), *[future.result() for future in rest]]


def test_callers_arriving_during_a_commit_share_the_next_one(store: Store, store_url: str) -> None:
    calls = [[new_job(f"j{n}")] for n in range(THREADS)]

    outcomes = batched(store, store_url, calls)

    assert outcomes == [[f"j{n}"] for n in range(THREADS)]
    assert store.group_commit.commits == 2  # the first alone, then the other 7 at once
    assert all(store.get_job(f"j{n}") is not None for n in range(THREADS))
    assert sum(store.count_states().values()) == THREADS


def test_a_row_the_database_refuses_fails_only_its_caller(store: Store, store_url: str) -> None:
    # Too large for SQLite's INTEGER and PostgreSQL's int column alike.
    bad = new_job("bad", priority=2**70)
    calls = [[new_job("lead")], [new_job("j1")], [bad], [new_job("j3"), new_job("j4")]]

    outcomes = batched(store, store_url, calls)

    assert outcomes[:2] == [["lead"], ["j1"]]
    assert outcomes[3] == ["j3", "j4"]
    assert isinstance(outcomes[2], InvalidArgument)
    assert "job bad (task shop.charge, queue orders)" in str(outcomes[2])
    assert store.get_job("bad") is None
    assert sum(store.count_states().values()) == 4


def test_idempotency_keys_in_one_batch_give_every_caller_the_holder(
    store: Store, store_url: str
) -> None:
    store.enqueue([new_job("old", key="known")])
    calls = [
        [new_job("lead")],
        [new_job("a", key="fresh")],
        [new_job("b", key="fresh")],
        [new_job("c", key="known")],
        [new_job("d")],
    ]

    outcomes = batched(store, store_url, calls)

    assert outcomes[0] == ["lead"]
    assert outcomes[1] == outcomes[2]
    assert outcomes[1] in (["a"], ["b"])
    assert outcomes[3:] == [["old"], ["d"]]
    assert sum(store.count_states().values()) == 4


def test_many_threads_enqueueing_get_ids_of_committed_jobs(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    app = worker_process.build(store_url, str(tmp_path / "executions.log"), "app", 30)
    task = app.tasks["crash.work"]
    per_thread = 100
    start = threading.Barrier(THREADS)

    def produce(n: int) -> list[str]:
        start.wait()
        keyed = [task.spec(n).options(idempotency_key=f"k{i % 5}") for i in range(10)]
        return [task.enqueue(n * per_thread + i) for i in range(per_thread)] + [
            app.enqueue(spec) for spec in keyed
        ]

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            ids = [i for produced in pool.map(produce, range(THREADS)) for i in produced]
        commits = app.store.group_commit.commits
    finally:
        app.close()

    plain = [i for n in range(THREADS) for i in ids[n * 110 : n * 110 + per_thread]]
    keyed = {i for n in range(THREADS) for i in ids[n * 110 + per_thread : (n + 1) * 110]}
    assert len(set(plain)) == THREADS * per_thread
    assert len(keyed) == 5  # one job per key, whichever thread wrote it first
    assert all(store.get_job(i) is not None for i in [*plain, *keyed])
    assert sum(store.count_states().values()) == THREADS * per_thread + 5
    assert commits <= len(ids)  # each a commit of its own at most


def test_the_transactional_enqueue_is_not_batched(store_url: str, tmp_path: Path) -> None:
    """`enqueue(..., connection=)` writes in the caller's transaction, which the caller
    commits: no commit of the group's."""
    app = worker_process.build(store_url, str(tmp_path / "executions.log"), "app", 30)
    conn = (
        sqlite3.connect(store_url.removeprefix("sqlite:///"))
        if store_url.startswith("sqlite")
        else psycopg.connect(store_url)
    )
    try:
        job = app.tasks["crash.work"].enqueue_in(conn, 1)
        conn.commit()
        assert app.store.get_job(job) is not None
        assert app.store.group_commit.commits == 0
    finally:
        conn.close()
        app.close()
