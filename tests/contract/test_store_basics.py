"""The store primitives on every backend: enqueue, lease, fencing, outcomes, schema."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace

import psycopg
import pytest

from deadletter.errors import StoreError, StoreUnavailable
from deadletter.model import Attempt, ErrorClass, Job, JobState, LeasedJob, NewJob
from deadletter.store import open_store, postgres, rows
from deadletter.store.base import (
    DEAD_LETTER_TASK,
    DeadLettered,
    JobOutcome,
    Retrying,
    Store,
    Succeeded,
    dead_letter_id,
)
from deadletter.store.postgres import PostgresStore
from deadletter.store.schema import migrations

NOW = 1_700_000_000.0
Q = "orders"
DLQ = "orders-dlq"


def new_job(
    job_id: str,
    *,
    queue: str = Q,
    priority: int = 0,
    run_at: float = NOW,
    max_retries: int = 3,
    key: str | None = None,
    labels: dict[str, str] | None = None,
) -> NewJob:
    return NewJob(
        id=job_id,
        queue=queue,
        task="shop.charge",
        payload={"args": [job_id], "kwargs": {"amount": 12.5, "note": "café ☕", "tags": None}},
        max_retries=max_retries,
        dead_letter_queue=f"{queue}-dlq",
        run_at=run_at,
        created_at=NOW,
        priority=priority,
        labels=labels or {},
        idempotency_key=key,
    )


def lease(
    store: Store,
    *,
    queues: Sequence[str] = (Q,),
    limit: int = 10,
    worker: str = "w1",
    now: float = NOW,
    lease_seconds: float = 30.0,
    begun: bool = False,
) -> list[LeasedJob]:
    """Lease; with `begun`, record that the jobs' tasks started, as a worker's slot does."""
    found = store.lease(queues, limit=limit, worker=worker, now=now, lease_seconds=lease_seconds)
    if begun:
        assert store.begin([job.lease for job in found], now=now) == []
    return sorted(found, key=lambda job: job.id)


def failure(job: LeasedJob, ended_at: float) -> Attempt:
    return Attempt(
        job_id=job.id,
        number=job.attempt,
        started_at=job.started_at,
        ended_at=ended_at,
        worker="w1",
        error_type="TimeoutError",
        message=f"upstream timed out on attempt {job.attempt}",
        traceback="Traceback (most recent call last): ...",
        http_status=504,
        error_class=ErrorClass.RECOVERABLE,
        rule="timeouts",
    )


def job_of(store: Store, job_id: str) -> Job:
    job = store.get_job(job_id)
    assert job is not None
    return job


# -- enqueue ---------------------------------------------------------------------


def test_enqueued_job_reads_back_as_queued(store: Store) -> None:
    sent = new_job("a", priority=5, labels={"user_id": "u-1"})

    assert store.enqueue([sent]) == ["a"]

    job = job_of(store, "a")
    assert (job.queue, job.task) == (Q, "shop.charge")
    assert (job.payload, job.labels) == (sent.payload, {"user_id": "u-1"})
    assert (job.priority, job.max_retries, job.dead_letter_queue) == (5, 3, DLQ)
    assert (job.run_at, job.created_at) == (NOW, NOW)
    assert (job.status, job.attempts, job.lease_token) == (JobState.QUEUED, 0, 0)
    assert job.lease_owner is None
    assert store.get_job("missing") is None


def test_batch_enqueue_returns_ids_in_order(store: Store) -> None:
    jobs = [new_job(f"j{n:04}", queue=f"q{n % 3}") for n in range(1000)]

    assert store.enqueue(jobs) == [job.id for job in jobs]
    assert store.enqueue([]) == []
    assert store.count_states() == {
        ("q0", JobState.QUEUED): 334,
        ("q1", JobState.QUEUED): 333,
        ("q2", JobState.QUEUED): 333,
    }


def test_idempotency_key_returns_the_existing_id(store: Store) -> None:
    assert store.enqueue([new_job("a", key="order-1")]) == ["a"]

    again = [new_job("b", key="order-1"), new_job("c", key="order-2"), new_job("d", key="order-2")]

    assert store.enqueue(again) == ["a", "c", "c"]
    assert store.get_job("b") is None
    assert store.get_job("d") is None
    assert sum(store.count_states().values()) == 2


# -- leasing -----------------------------------------------------------------------


def test_lease_takes_priority_then_oldest_ready_job_of_the_queues_asked(store: Store) -> None:
    store.enqueue(
        [
            new_job("low-old", run_at=NOW - 20),
            new_job("high", priority=9, run_at=NOW - 1),
            new_job("low-new", run_at=NOW - 10),
            new_job("future", priority=99, run_at=NOW + 60),
            new_job("elsewhere", queue="other", priority=99, run_at=NOW - 99),
        ]
    )

    order = [job.id for _ in range(3) for job in lease(store, limit=1)]

    assert order == ["high", "low-old", "low-new"]
    assert lease(store) == []
    assert [job.id for job in lease(store, queues=[Q, "other"])] == ["elsewhere"]
    assert [job.id for job in lease(store, now=NOW + 60)] == ["future"]


def dead_letter(job_id: str, run_at: float) -> NewJob:
    return replace(new_job(job_id, queue=DLQ, run_at=run_at), task=DEAD_LETTER_TASK)


def test_dead_letters_up_to_their_budget_are_leased_before_an_older_backlog(
    store: Store,
) -> None:
    store.enqueue([new_job(f"old-{n:02}", run_at=NOW - 100 + n) for n in range(30)])
    store.enqueue([dead_letter(f"dl-{n}", NOW - n) for n in range(3)])

    def take(limit: int, letters: int) -> list[str]:
        found = store.lease(
            [Q, DLQ], limit=limit, worker="w1", now=NOW, lease_seconds=30, letters=letters
        )
        return [job.id for job in found]

    # The two oldest letters first, then the main queue by age: it is not starved.
    assert sorted(take(5, 2)) == ["dl-1", "dl-2", "old-00", "old-01", "old-02"]
    assert sorted(take(3, 2)) == ["dl-0", "old-03", "old-04"]
    # Without a budget, age alone: the letter waits behind the whole backlog.
    store.enqueue([dead_letter("dl-new", NOW)])
    assert "dl-new" not in take(10, 0)
    # The budget is a head start, not a cap: past it, letters compete by age.
    store.enqueue([dead_letter(f"dl-late-{n}", NOW) for n in range(2)])
    assert len(take(25, 1)) == 18


def test_lease_marks_the_job_running_for_its_worker(store: Store) -> None:
    store.enqueue([new_job("a")])

    [leased] = lease(store, worker="w7", lease_seconds=30)

    assert (leased.attempt, leased.token, leased.lease_expires_at) == (1, 1, NOW + 30)
    assert leased.started_at == NOW
    job = job_of(store, "a")
    assert (job.status, job.lease_owner, job.attempts, job.started_at) == (
        JobState.RUNNING,
        "w7",
        1,
        NOW,
    )


def test_a_leased_job_carries_its_payload_and_labels_as_enqueued(store: Store) -> None:
    labelled = new_job("a", labels={"user_id": "u-1", "note": 'naïve "quoted" {}'})
    store.enqueue([labelled, new_job("b")])

    by_id = {job.id: job for job in lease(store)}

    assert (by_id["a"].payload, by_id["a"].labels) == (labelled.payload, labelled.labels)
    assert (by_id["b"].payload, by_id["b"].labels) == (new_job("b").payload, {})


def test_concurrent_leasers_never_get_the_same_job(store: Store) -> None:
    store.enqueue([new_job(f"j{n:03}") for n in range(300)])
    start = threading.Barrier(4)

    def take(worker: str) -> list[str]:
        start.wait()
        taken: list[str] = []
        while batch := lease(store, limit=7, worker=worker):
            taken.extend(job.id for job in batch)
        return taken

    with ThreadPoolExecutor(4) as pool:
        taken = [job_id for ids in pool.map(take, ["w1", "w2", "w3", "w4"]) for job_id in ids]

    assert len(taken) == 300
    assert len(set(taken)) == 300


# -- outcomes and fencing ------------------------------------------------------------


def test_finish_with_a_stale_token_is_fenced_out(store: Store) -> None:
    store.enqueue([new_job("a")])
    [first] = lease(store, worker="w1", lease_seconds=5, begun=True)
    [lost] = store.reclaim_expired(limit=10, now=NOW + 10, lease_seconds=30)

    stale: list[JobOutcome] = [
        Succeeded(first.lease, NOW + 11),
        Retrying(first.lease, failure(first, NOW + 11), run_at=NOW + 20),
    ]
    assert store.finish(stale, now=NOW + 11) == set()

    job = job_of(store, "a")
    assert (job.status, job.lease_owner, job.lease_token) == (
        JobState.RUNNING,
        "w1",
        lost.job.token,
    )
    assert store.attempts("a") == []
    assert store.finish([Succeeded(lost.job.lease, NOW + 12)], now=NOW + 12) == {"a"}
    assert store.finish([Succeeded(lost.job.lease, NOW + 13)], now=NOW + 13) == set()
    job = job_of(store, "a")
    assert (job.status, job.completed_at, job.lease_owner) == (JobState.SUCCEEDED, NOW + 12, None)


def test_retry_records_the_attempt_and_waits_until_run_at(store: Store) -> None:
    store.enqueue([new_job("a")])
    [leased] = lease(store)
    attempt = failure(leased, NOW + 1)

    assert store.finish([Retrying(leased.lease, attempt, run_at=NOW + 60)], now=NOW + 1) == {"a"}

    job = job_of(store, "a")
    assert (job.status, job.run_at, job.attempts) == (JobState.RETRYING, NOW + 60, 1)
    assert job.last_error == f"TimeoutError: {attempt.message}"
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert store.attempts("a") == [attempt]
    assert lease(store, now=NOW + 59) == []
    assert [job.attempt for job in lease(store, now=NOW + 60)] == [2]


def test_dead_lettering_inserts_one_dead_letter_with_the_full_history(store: Store) -> None:
    store.enqueue([new_job("a", max_retries=1, priority=3, labels={"user_id": "u-1"})])
    [first] = lease(store)
    history = [failure(first, NOW + 1)]
    store.finish([Retrying(first.lease, history[0], run_at=NOW + 2)], now=NOW + 1)
    [second] = lease(store, now=NOW + 2)
    history.append(failure(second, NOW + 3))
    dead = DeadLettered(second.lease, history[1], reason="retries exhausted", dlq_max_retries=5)

    assert store.finish([dead], now=NOW + 3) == {"a"}
    assert store.finish([dead], now=NOW + 4) == set()

    job = job_of(store, "a")
    assert (job.status, job.completed_at, job.attempts) == (JobState.DEAD_LETTERED, NOW + 3, 2)
    [letter] = store.list_jobs(queue=DLQ)
    assert letter.id == dead_letter_id("a", 2)
    assert (letter.task, letter.status) == (DEAD_LETTER_TASK, JobState.QUEUED)
    assert letter.max_retries == 5
    assert letter.dead_letter_queue == f"{DLQ}-parked"
    assert (letter.priority, letter.labels, letter.run_at) == (3, {"user_id": "u-1"}, NOW + 3)
    assert letter.payload == {
        "job_id": "a",
        "queue": Q,
        "task": job.task,
        "payload": job.payload,
        "labels": {"user_id": "u-1"},
        "created_at": NOW,
        "reason": "retries exhausted",
        "poison": False,
        "attempts": [attempt.to_json() for attempt in history],
    }
    assert sum(store.count_states().values()) == 2


@pytest.mark.parametrize("reason, poison", [("poison: its worker was lost", True), ("", False)])
def test_migration_0015_backfills_the_poison_of_older_letters(
    store: Store, reason: str, poison: bool
) -> None:
    """A letter written before 0015 said poison only as its reason's first word."""
    letter = replace(new_job("a", queue=DLQ), task=DEAD_LETTER_TASK, payload={"reason": reason})
    store.enqueue([letter])
    with store.transaction() as execute:
        execute("DELETE FROM schema_migrations WHERE version = 15", ())
    assert store.migrate() == ["0015_poison_letters"]
    assert job_of(store, "a").payload == {"reason": reason, "poison": poison}


def test_finish_applies_a_mixed_batch_in_one_call(store: Store) -> None:
    store.enqueue([new_job(f"j{n}", max_retries=0) for n in range(4)])
    ok, retry, dead, released = lease(store)
    store.release([released.lease], now=NOW)
    outcomes: list[JobOutcome] = [
        Succeeded(ok.lease, NOW + 1),
        Retrying(retry.lease, failure(retry, NOW + 1), run_at=NOW + 5),
        DeadLettered(dead.lease, failure(dead, NOW + 1), reason="permanent", dlq_max_retries=3),
        Succeeded(released.lease, NOW + 1),
    ]

    assert store.finish(outcomes, now=NOW + 1) == {ok.id, retry.id, dead.id}

    states = [job_of(store, job.id).status.value for job in (ok, retry, dead, released)]
    assert states == ["succeeded", "retrying", "dead_lettered", "queued"]
    assert [len(store.attempts(job.id)) for job in (ok, retry, dead, released)] == [0, 1, 1, 0]
    assert [letter.id for letter in store.list_jobs(queue=DLQ)] == [dead_letter_id(dead.id, 1)]


# -- leases given back, kept alive, taken over -------------------------------------------


def test_release_restores_the_attempt_count(store: Store) -> None:
    store.enqueue([new_job("a"), new_job("b", run_at=NOW + 1)])
    [a] = lease(store)
    store.finish([Retrying(a.lease, failure(a, NOW + 1), run_at=NOW + 2)], now=NOW + 1)
    a, b = lease(store, now=NOW + 2)

    assert store.release([a.lease, b.lease], now=NOW + 3) == 2
    assert store.release([a.lease], now=NOW + 4) == 0

    first, second = job_of(store, "a"), job_of(store, "b")
    assert (first.status, first.attempts, first.run_at) == (JobState.RETRYING, 1, NOW + 3)
    assert (second.status, second.attempts, second.lease_owner) == (JobState.QUEUED, 0, None)
    assert [job.attempt for job in lease(store, now=NOW + 3)] == [2, 1]


def test_extend_returns_the_leases_no_longer_held(store: Store) -> None:
    store.enqueue([new_job("a", run_at=NOW - 1), new_job("b")])
    [short] = lease(store, limit=1, lease_seconds=5, begun=True)
    [long] = lease(store, limit=1, lease_seconds=100)
    store.reclaim_expired(limit=10, now=NOW + 10, lease_seconds=30)

    assert store.extend([short.lease, long.lease], until=NOW + 200) == [short.lease]
    assert store.extend([], until=NOW + 200) == []

    assert job_of(store, "a").lease_expires_at == NOW + 40
    assert job_of(store, "b").lease_expires_at == NOW + 200


def test_reclaim_expired_takes_over_with_the_previous_owner_named(store: Store) -> None:
    store.enqueue([new_job("a", run_at=NOW - 1), new_job("b")])
    [short] = lease(store, limit=1, worker="w1", lease_seconds=5, begun=True)
    lease(store, limit=1, worker="w1", lease_seconds=100, begun=True)

    assert store.reclaim_expired(limit=10, now=NOW + 4, lease_seconds=30) == []
    [lost] = store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=30)

    assert (lost.lost_worker, lost.began_at) == ("w1", NOW)
    assert (lost.job.id, lost.job.token, lost.job.attempt) == ("a", short.token + 1, 1)
    assert (lost.job.lease_expires_at, lost.job.started_at) == (NOW + 36, NOW)
    job = job_of(store, "a")
    assert (job.status, job.lease_owner, job.attempts) == (JobState.RUNNING, "w1", 1)
    assert store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=30) == []


def test_a_reclaimer_lost_before_it_records_the_attempt_is_not_blamed_for_it(store: Store) -> None:
    store.enqueue([new_job("a")])
    lease(store, limit=1, worker="w1", lease_seconds=5, begun=True)
    # The reclaimer takes the lease over and dies before it records the lost attempt.
    [first] = store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=5)

    [again] = store.reclaim_expired(limit=10, now=NOW + 12, lease_seconds=30)

    assert (again.lost_worker, again.began_at) == ("w1", NOW)
    assert (again.job.attempt, again.job.token) == (1, first.job.token + 1)


def test_an_expired_lease_on_a_job_that_never_began_goes_back_uncharged(store: Store) -> None:
    store.enqueue([new_job("a", run_at=NOW - 5), new_job("b", run_at=NOW - 1)])
    [a] = lease(store, limit=1, worker="w1", lease_seconds=5)
    [b] = lease(store, limit=1, worker="w1", lease_seconds=5, begun=True)

    [lost] = store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=30)

    assert lost.job.id == b.id
    job = job_of(store, "a")
    assert (job.status, job.attempts, job.lease_owner) == (JobState.QUEUED, 0, None)
    assert job.run_at == NOW - 5  # its place in the queue, not the back of it
    assert store.attempts("a") == []
    assert store.begin([a.lease], now=NOW + 7) == [a.lease]
    [again] = lease(store, worker="w3", now=NOW + 7)
    assert (again.id, again.attempt) == ("a", 1)


def test_each_expired_lease_unbegun_counts_a_lost_worker_and_a_release_does_not(
    store: Store,
) -> None:
    store.enqueue([new_job("a"), new_job("b")])
    a, b = lease(store, lease_seconds=5)
    assert (a.worker_losses, b.worker_losses) == (0, 0)
    store.release([b.lease], now=NOW)
    assert store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=30) == []

    assert (job_of(store, "a").worker_losses, job_of(store, "b").worker_losses) == (1, 0)
    again = lease(store, now=NOW + 7, lease_seconds=5, begun=True)
    assert [(job.id, job.worker_losses) for job in again] == [("a", 1), ("b", 0)]
    # A lost attempt that began is charged instead: not counted again as a loss.
    assert len(store.reclaim_expired(limit=10, now=NOW + 13, lease_seconds=30)) == 2
    assert job_of(store, "a").worker_losses == 1


def test_begin_returns_the_leases_no_longer_held(store: Store) -> None:
    store.enqueue([new_job("a"), new_job("b")])
    first, second = lease(store, lease_seconds=5)
    store.release([second.lease], now=NOW)

    assert store.begin([first.lease, second.lease], now=NOW + 1) == [second.lease]
    assert store.begin([], now=NOW + 1) == []
    [lost] = store.reclaim_expired(limit=10, now=NOW + 6, lease_seconds=30)
    assert lost.job.id == "a"


def test_state_counts_add_up_to_what_was_enqueued(store: Store) -> None:
    store.enqueue([new_job(f"j{n}", max_retries=0) for n in range(10)])
    ok1, ok2, retry1, retry2, dead, released = lease(store, limit=6)
    store.release([released.lease], now=NOW)
    store.finish(
        [
            Succeeded(ok1.lease, NOW),
            Succeeded(ok2.lease, NOW),
            Retrying(retry1.lease, failure(retry1, NOW), run_at=NOW),
            Retrying(retry2.lease, failure(retry2, NOW), run_at=NOW),
            DeadLettered(dead.lease, failure(dead, NOW), reason="permanent", dlq_max_retries=3),
        ],
        now=NOW,
    )

    assert store.count_states() == {
        (Q, JobState.QUEUED): 5,
        (Q, JobState.SUCCEEDED): 2,
        (Q, JobState.RETRYING): 2,
        (Q, JobState.DEAD_LETTERED): 1,
        (DLQ, JobState.QUEUED): 1,
    }


def test_next_due_is_the_earliest_ready_time_or_lease_expiry(store: Store) -> None:
    assert store.next_due([Q]) is None
    store.enqueue([new_job("a", run_at=NOW + 50), new_job("b", run_at=NOW - 5)])
    lease(store, lease_seconds=20)

    assert store.next_due([Q]) == NOW + 20
    assert store.next_due(["other"]) is None


# -- waiting -----------------------------------------------------------------------------


def test_wait_for_work_returns_on_timeout_or_stop(store: Store) -> None:
    stop = threading.Event()
    started = time.monotonic()
    store.wait_for_work([Q], 0.3, stop)
    assert 0.25 <= time.monotonic() - started < 3

    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    store.wait_for_work([Q], 30, stop)
    assert time.monotonic() - started < 3


def test_enqueue_wakes_a_worker_waiting_on_its_queue(postgres_url: str) -> None:
    waiting, producer = PostgresStore(postgres_url), PostgresStore(postgres_url)
    stop = threading.Event()
    try:
        waiting.wait_for_work([Q], 0.05, stop)  # now listening
        producer.enqueue([new_job("elsewhere", queue="other")])
        started = time.monotonic()
        waiting.wait_for_work([Q], 1.0, stop)
        assert time.monotonic() - started >= 0.9

        later = threading.Timer(0.2, producer.enqueue, args=([new_job("a")],))
        later.start()
        started = time.monotonic()
        waiting.wait_for_work([Q], 30, stop)
        assert time.monotonic() - started < 5
        # The notification can arrive before the producer has read its own answer: a
        # store closed under it would fail its enqueue, in a thread of its own.
        later.join()
    finally:
        waiting.close()
        producer.close()


def test_a_single_enqueue_takes_no_pooled_connection_and_outlives_a_dropped_one(
    postgres_url: str,
) -> None:
    """One round trip per enqueue: the producing thread's own autocommitted connection,
    not the pool's (whose checkout checks the connection first); when the server drops
    that connection, the next enqueue reconnects and inserts its job once."""
    store = PostgresStore(postgres_url)
    try:
        store.enqueue([new_job("a")])
        checkouts = store._pool.get_stats().get("requests_num", 0)
        store.enqueue([new_job("b"), new_job("c")])
        assert store._pool.get_stats().get("requests_num", 0) == checkouts
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert store.enqueue([new_job("d")]) == ["d"]
        assert {job.id for job in store.list_jobs(queue=Q)} == {"a", "b", "c", "d"}
    finally:
        store.close()


# Terminate every other backend of the database, waiting up to 5 s for each to exit.
TERMINATE_OTHERS = (
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def test_the_pool_lends_a_quiet_connection_without_a_round_trip(postgres_url: str) -> None:
    """The pool's check sends nothing over a connection the server has not spoken on
    (its backend's last statement is still the caller's), and raises, so that the pool
    replaces it, once the server has ended the connection."""
    with (
        psycopg.connect(postgres_url, autocommit=True) as conn,
        psycopg.connect(postgres_url, autocommit=True) as admin,
    ):
        conn.execute("SELECT 'the last statement'")
        postgres._check_if_spoken_to(conn)
        last = "SELECT query FROM pg_stat_activity WHERE pid = %s"
        pid = conn.info.backend_pid
        assert admin.execute(last, (pid,)).fetchone() == ("SELECT 'the last statement'",)
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            postgres._check_if_spoken_to(conn)


def test_a_pooled_connection_the_server_ended_is_replaced_before_it_is_lent(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url)
    try:
        assert store.count_states() == {}
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(TERMINATE_OTHERS)
        assert store.count_states() == {}
    finally:
        store.close()


def test_postgres_indexes_only_the_jobs_that_have_an_idempotency_key(postgres_url: str) -> None:
    """Migration 0033: a job without a key takes no entry in the key's unique index, so
    its enqueue, lease and outcome do not write one (ANALYZE counts an index's rows)."""
    store = PostgresStore(postgres_url)
    try:
        store.enqueue([new_job(f"plain-{n}") for n in range(20)] + [new_job("k", key="order-1")])
        assert store.enqueue([new_job("again", key="order-1")]) == ["k"]
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute("ANALYZE queue_jobs")
        entries = pg.execute(
            "SELECT c.reltuples FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = 'queue_jobs'::regclass AND i.indisunique"
            " AND a.attname = 'idempotency_key'"
        ).fetchall()
    assert entries == [(1.0,)]


def test_an_unreachable_server_raises_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere", timeout=1)
    try:
        with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/nowhere: .*refused"):
            store.get_job("a")
    finally:
        store.close()


def test_a_database_without_the_schema_says_to_migrate(empty_postgres_url: str) -> None:
    store = PostgresStore(empty_postgres_url)
    try:
        with pytest.raises(StoreError, match="deadletter migrate"):
            store.dlq_stats(now=time.time())
    finally:
        store.close()


# -- schema ------------------------------------------------------------------------------


def names(column_list: str) -> set[str]:
    return {name.strip() for name in column_list.split(",")}


EXPECTED_COLUMNS = {
    "queue_jobs": {f.name for f in fields(Job)} | names(rows.LEASED_COLUMNS),
    "job_attempts": {"seq"} | names(rows.ATTEMPT_COLUMNS),
    "schema_migrations": {"version", "name", "applied_at"},
}
EMPTY = {"sqlite": "sqlite_url", "postgres": "empty_postgres_url"}


@pytest.fixture(params=list(EMPTY))
def empty_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(backend, URL) of a database with no tables."""
    url: str = request.getfixturevalue(EMPTY[request.param])
    return request.param, url


def columns(url: str, table: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    sql = "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(sql, (table,))}


def test_migrating_an_empty_database_creates_what_the_code_reads(
    empty_url: tuple[str, str],
) -> None:
    backend, url = empty_url
    store = open_store(url)
    try:
        assert store.migrate() == [m.name for m in migrations(backend)]
        assert store.migrate() == []
    finally:
        store.close()

    for table, expected in EXPECTED_COLUMNS.items():
        assert expected <= columns(url, table), table


def test_two_processes_migrating_at_once_apply_each_migration_once(
    empty_url: tuple[str, str],
) -> None:
    backend, url = empty_url
    stores = [open_store(url), open_store(url)]
    start = threading.Barrier(len(stores))

    def migrate(store: Store) -> list[str]:
        start.wait()
        return store.migrate()

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            applied = sorted(pool.map(migrate, stores))
    finally:
        for store in stores:
            store.close()

    assert applied == [[], [m.name for m in migrations(backend)]]


def test_migrate_on_a_migrated_database_is_a_no_op(store: Store) -> None:
    store.enqueue([new_job("a")])

    assert store.migrate() == []
    assert store.migrate() == []
    assert job_of(store, "a").status is JobState.QUEUED


def test_transaction_commits_shared_sql_and_rolls_back_on_error(store: Store) -> None:
    store.enqueue([new_job("a")])
    with store.transaction() as execute:
        execute("UPDATE queue_jobs SET priority = ? WHERE id = ?", (7, "a"))
    with pytest.raises(RuntimeError), store.transaction() as execute:
        execute("UPDATE queue_jobs SET priority = ? WHERE id = ?", (9, "a"))
        raise RuntimeError("after the update")
    with store.snapshot() as execute:
        assert execute("SELECT priority FROM queue_jobs WHERE id = ?", ("a",)).fetchone()[0] == 7
