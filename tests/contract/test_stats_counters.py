"""The DLQ statistics come from counters that triggers keep (migration 0006). Whatever
writes the tables, they must say what a count over every failed job says: that count,
the seed's query before the counters, is the oracle here."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import DEFAULT_POLICY
from deadletter.ops.archive import archive, purge
from deadletter.ops.recovery import abandon, requeue
from deadletter.store import open_store
from deadletter.store.base import Store
from deadletter.store.reports import DAY, RECOVERY_STATUSES, DlqStats
from deadletter.worker.prune import Pruner
from tests.support.operator import OTHER_Q, Downstream, Q, fail, run_worker

# The seed's statistics by a full scan: what the counters replaced.
SCAN = """
SELECT
    count(*),
    coalesce(sum(CASE WHEN r.status IS NULL OR r.status NOT IN ('pending', 'requeued')
                      THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN j.completed_at >= ? THEN 1 ELSE 0 END), 0),
    avg(j.attempts - 1)
FROM queue_jobs j
LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id
WHERE j.status = 'failed'
"""
SCAN_RECOVERY = "SELECT status, count(*) FROM dlq_recovery_queue GROUP BY status"

TABLE_TRIGGERS = {
    "dlq_stats_jobs_insert": "queue_jobs",
    "dlq_stats_jobs_update": "queue_jobs",
    "dlq_stats_jobs_delete": "queue_jobs",
    "dlq_stats_recovery_insert": "dlq_recovery_queue",
    "dlq_stats_recovery_update": "dlq_recovery_queue",
    "dlq_stats_recovery_delete": "dlq_recovery_queue",
}


def scanned(store: Store, now: float) -> DlqStats:
    with store.snapshot() as execute:
        total, permanent, recent, avg = execute(SCAN, (now - DAY,)).fetchone()
        counts = dict(execute(SCAN_RECOVERY, ()).fetchall())
    return DlqStats(
        total_failed=int(total),
        permanent_failures=int(permanent),
        last_24h=int(recent),
        avg_retries=round(float(avg or 0.0), 2),
        recovery={status: int(counts.get(status, 0)) for status in RECOVERY_STATUSES},
    )


def window_edges(store: Store) -> list[float]:
    """Times `now` that put the start of the 24-hour window on, just before and just after
    the completion of failed jobs: where a count by the minute would be off."""
    with store.snapshot() as execute:
        done = execute(
            "SELECT completed_at FROM queue_jobs WHERE status = 'failed'"
            " AND completed_at IS NOT NULL ORDER BY completed_at",
            (),
        ).fetchall()
    ends = [row[0] for row in done]
    picked = ends[:: max(len(ends) // 6, 1)] + ends[-1:]
    return [time.time()] + [t + DAY + d for t in picked for d in (-0.25, 0.0, 0.25)]


def counts_hold(store: Store) -> list[str]:
    """What the counters got wrong, at each of the window's edges: nothing, if they hold."""
    wrong = []
    for now in window_edges(store):
        counted, expected = store.dlq_stats(now=now), scanned(store, now)
        if counted != expected:
            wrong.append(f"at now={now}: counted {counted}, scanned {expected}")
    return wrong


def assert_counts_hold(store: Store) -> None:
    wrong = counts_hold(store)
    assert not wrong, "\n".join(wrong)


# -- the life of failures, as a worker and operators make it --------------------------------


def test_the_counters_follow_failures_requeues_recoveries_abandons_and_archives(
    dlq_app: App, downstream: Downstream
) -> None:
    store = dlq_app.store
    assert_counts_hold(store)
    # Failures of every class, handled together by one worker run.
    fetches = [dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec(f"t/{n}")) for n in range(4)]
    for kind in ("invalid", "server_error", "mystery", "mystery", "fine"):
        dlq_app.enqueue(dlq_app.tasks["reports.build"].spec(kind, "7"))
    run_worker(dlq_app)
    assert_counts_hold(store)
    recovered, again, abandoned, waiting = fetches

    downstream.healthy.add("t/0")
    redo(dlq_app, recovered)
    assert_counts_hold(store)
    run_worker(dlq_app)  # succeeds: its recovery row becomes recovered
    assert_counts_hold(store)
    # Retention 0 prunes every handled letter (and any job that only succeeded).
    queues = [Q, OTHER_Q, *dlq_app.dead_letter_queues([Q, OTHER_Q])]
    keep_none = replace(DEFAULT_POLICY, retention_seconds=0)
    assert Pruner(store, queues, lambda queue: keep_none)()
    assert_counts_hold(store)

    redo(dlq_app, again)
    run_worker(dlq_app)  # fails again: back to pending
    assert_counts_hold(store)

    assert abandon(store, abandoned, actor="ana", reason="retired").done
    assert_counts_hold(store)
    invalid = fail(dlq_app, "reports.build", "invalid", "8")
    redo(dlq_app, invalid)  # a USER_ERROR job gets its first recovery row, requeued
    assert_counts_hold(store)
    run_worker(dlq_app)
    assert_counts_hold(store)

    later = time.time() + 40 * DAY
    assert archive(store, dlq_app.dlq.blobs, older_than_seconds=DAY, now=later).failures
    assert_counts_hold(store)
    redo(dlq_app, waiting)
    assert purge(store, older_than_seconds=DAY, now=later, archived_only=False).failures
    assert_counts_hold(store)
    assert store.dlq_stats(now=time.time()).total_failed > 0


def redo(app: App, job_id: str) -> None:
    result = requeue(
        app.store,
        job_id,
        actor="ana",
        reason="back",
        policy=app.policy,
        payload_limit=app.settings.payload_limit_bytes,
    )
    assert result.done, result


# -- any writes at all: random statements over a few jobs ----------------------------------

STATUSES = ("queued", "running", "retrying", "succeeded", "dead_lettered", "failed")
NOW = 1_800_000_000.0
JOBS = [f"job-{n:02d}" for n in range(24)]


def random_writes(store: Store, seed: int, transactions: int, check: bool = True) -> None:
    """Random multi-row writes to both tables, a few statements per transaction; with
    `check`, the counters are compared with the scan after each transaction."""
    rng = random.Random(seed)
    for _ in range(transactions):
        with store.transaction() as execute:
            for _ in range(rng.randint(1, 3)):
                sql, params = random_statement(rng)
                execute(sql, params)
        if check:
            assert_counts_hold(store)


def random_statement(rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    ids = rng.sample(JOBS, rng.randint(1, 6))
    marks = ", ".join("?" * len(ids))
    choice = rng.randrange(9)
    if choice == 0:
        rows = [(i, rng.choice(STATUSES), rng.randint(1, 5), completed(rng)) for i in ids]
        sql = "INSERT INTO queue_jobs (id, queue, task, payload, status, attempts, max_retries,"
        sql += " dead_letter_queue, run_at, created_at, completed_at) VALUES "
        sql += ", ".join(["(?, 'q', 't', '{}', ?, ?, 3, 'q-dlq', 0, 0, ?)"] * len(ids))
        return sql + " ON CONFLICT DO NOTHING", tuple(v for row in rows for v in row)
    if choice == 1:
        return f"UPDATE queue_jobs SET status = ? WHERE id IN ({marks})", (
            rng.choice(STATUSES),
            *ids,
        )
    if choice == 2:
        # Rows of one statement going both ways, into and out of failed.
        sql = "UPDATE queue_jobs SET status = CASE WHEN status = 'failed' THEN 'queued'"
        return sql + f" ELSE 'failed' END WHERE id IN ({marks})", tuple(ids)
    if choice == 3:
        return f"UPDATE queue_jobs SET attempts = attempts + 1 WHERE id IN ({marks})", tuple(ids)
    if choice == 4:
        sql = f"UPDATE queue_jobs SET completed_at = ? WHERE id IN ({marks})"
        return sql, (completed(rng), *ids)
    if choice == 5:
        return f"DELETE FROM queue_jobs WHERE id IN ({marks})", tuple(ids)
    if choice == 6:
        recovery = [(i, f"dl-{i}", rng.choice(RECOVERY_STATUSES)) for i in ids]
        sql = "INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status,"
        sql += " created_at, updated_at) VALUES "
        sql += ", ".join(["(?, ?, 'q', ?, 0, 0)"] * len(ids))
        sql += " ON CONFLICT (job_id) DO UPDATE SET status = excluded.status"
        return sql, tuple(v for row in recovery for v in row)
    if choice == 7:
        sql = f"UPDATE dlq_recovery_queue SET status = ? WHERE job_id IN ({marks})"
        return sql, (rng.choice(RECOVERY_STATUSES), *ids)
    return f"DELETE FROM dlq_recovery_queue WHERE job_id IN ({marks})", tuple(ids)


def completed(rng: random.Random) -> float | None:
    """A completion within two days of NOW, sometimes on a minute's first instant."""
    if rng.random() < 0.1:
        return None
    at = NOW - rng.uniform(0, 2 * DAY)
    return float(int(at) // 60 * 60) if rng.random() < 0.3 else at


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_counters_follow_random_writes(store: Store, seed: int) -> None:
    random_writes(store, seed, transactions=40)


@pytest.mark.parametrize("trigger", sorted(TABLE_TRIGGERS))
def test_without_any_one_trigger_the_counters_go_wrong(store: Store, trigger: str) -> None:
    """The random writes above would catch a missing trigger."""
    with store.transaction() as execute:
        on_table = "" if store.url.startswith("sqlite") else f" ON {TABLE_TRIGGERS[trigger]}"
        execute(f"DROP TRIGGER {trigger}{on_table}", ())
    random_writes(store, seed=1, transactions=40, check=False)
    assert counts_hold(store)


# -- the migration's backfill, and concurrent writers -----------------------------------------

UNDO_0006 = {
    "sqlite": [
        "DROP VIEW dlq_stats_job_changes",
        "DROP VIEW dlq_stats_recovery_changes",
        *(f"DROP TRIGGER {name}" for name in TABLE_TRIGGERS),
        "DROP TABLE dlq_stats_counters",
        "DROP TABLE dlq_stats_minutes",
        "DROP INDEX queue_jobs_failed",
    ],
    "postgres": [
        "DROP FUNCTION dlq_stats_jobs, dlq_stats_recovery, dlq_stats_shard CASCADE",
        "DROP TYPE dlq_stats_job, dlq_stats_recovery CASCADE",
        "DROP TABLE dlq_stats_counters, dlq_stats_minutes",
        "DROP INDEX queue_jobs_failed",
    ],
}


def test_the_migration_counts_what_is_there_already(store: Store) -> None:
    random_writes(store, seed=4, transactions=30, check=False)
    backend = "sqlite" if store.url.startswith("sqlite") else "postgres"
    with store.transaction() as execute:
        for statement in UNDO_0006[backend]:
            execute(statement, ())
        execute("DELETE FROM schema_migrations WHERE version = 6", ())
    assert store.migrate() == ["0006_stats_counters"]
    assert_counts_hold(store)
    random_writes(store, seed=5, transactions=10)


def test_concurrent_writers_take_shards_of_their_own(postgres_url: str) -> None:
    """Transactions that count failures at once neither wait for each other nor lose a
    count: each holds its own shard until it commits."""
    store = open_store(postgres_url)
    writers = 4
    all_open = threading.Barrier(writers, timeout=30)

    def write(n: int) -> None:
        with store.transaction() as execute:
            execute(
                "INSERT INTO queue_jobs (id, queue, task, payload, status, attempts,"
                " max_retries, dead_letter_queue, run_at, created_at, completed_at)"
                " VALUES (?, 'q', 't', '{}', 'failed', 2, 3, 'q-dlq', 0, 0, ?)",
                (f"job-{n}", NOW),
            )
            all_open.wait()  # a writer blocked on another's counter row never gets here

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not all_open.broken
        assert_counts_hold(store)
        with store.snapshot() as execute:
            shards = execute("SELECT count(*) FROM dlq_stats_counters WHERE failed <> 0", ())
            assert shards.fetchone()[0] == writers
    finally:
        store.close()
