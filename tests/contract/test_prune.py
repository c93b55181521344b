"""Bounded storage: workers prune succeeded jobs and handled dead letters past their
queue's retention (worker/prune.py, store/prune.py); failures stay until archived."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg

from deadletter.app import App
from deadletter.config import QueuePolicy
from deadletter.model import JobState
from deadletter.ops.archive import archive
from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.worker.prune import Pruner
from tests.contract.test_stats_counters import assert_counts_hold, redo, scanned
from tests.support.operator import OTHER_Q, Downstream, Q, fail, make_app, run_worker, table

DAY = 86400.0


def count(app: App, sql: str, *params: object) -> int:
    return int(table(app, sql, *params)[0][0])


def pruner(app: App, *, at: float, batch: int = 500) -> Pruner:
    queues = [Q, OTHER_Q, *app.dead_letter_queues([Q, OTHER_Q])]
    return Pruner(app.store, queues, app.policy, batch=batch, pause=0.0, clock=lambda: at)


def test_pruning_removes_succeeded_jobs_and_handled_letters_and_keeps_every_failure(
    dlq_app: App, downstream: Downstream
) -> None:
    downstream.healthy.update({"ok/1", "ok/2"})
    fine = [dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec(f"ok/{n}")) for n in (1, 2)]
    failed = fail(dlq_app, "reports.build", "invalid", "7")
    # A job that failed, was requeued and succeeded: it has a failure, so it stays.
    recovered = fail(dlq_app, "charts.fetch", "later")
    downstream.healthy.add("later")
    redo(dlq_app, recovered)
    run_worker(dlq_app)
    failures = count(dlq_app, "SELECT count(*) FROM dlq_failures")
    letters = "SELECT count(*) FROM queue_jobs WHERE task = ?"
    assert count(dlq_app, letters, DEAD_LETTER_TASK) == failures == 2

    # Within the retention (a day by default) nothing goes.
    assert pruner(dlq_app, at=time.time())() == 0
    next_day = time.time() + DAY + 1
    assert pruner(dlq_app, at=next_day)() == 4  # two jobs, two letters

    for job_id in fine:
        assert dlq_app.store.get_job(job_id) is None
    gone = count(dlq_app, "SELECT count(*) FROM job_attempts WHERE job_id IN (?, ?)", *fine)
    assert gone == 0
    assert count(dlq_app, letters, DEAD_LETTER_TASK) == 0
    assert count(dlq_app, "SELECT count(*) FROM dlq_failures") == failures
    kept = {job_id: dlq_app.store.get_job(job_id) for job_id in (failed, recovered)}
    assert {job_id: job and job.status for job_id, job in kept.items()} == {
        failed: JobState.FAILED,
        recovered: JobState.SUCCEEDED,
    }
    assert dlq_app.store.attempts(failed) and dlq_app.store.attempts(recovered)
    # The statistics still say what a scan says, at the pruner's time (the per-minute
    # counts it dropped are those of an earlier day).
    assert dlq_app.store.dlq_stats(now=next_day) == scanned(dlq_app.store, next_day)
    # The failures still archive whole, their letters aside.
    later = time.time() + 40 * DAY
    assert archive(dlq_app.store, dlq_app.dlq.blobs, older_than_seconds=DAY, now=later).failures


def test_each_queue_keeps_its_own_retention_and_zero_keeps_nothing(
    store_url: str, tmp_path: Path, downstream: Downstream
) -> None:
    app = make_app(store_url, tmp_path, downstream)
    try:
        policies = dict(app.settings.queues)
        policies[Q] = replace(policies[Q], retention_seconds=0)
        policies[OTHER_Q] = replace(policies[OTHER_Q], retention_seconds=3600)
        app.settings = replace(app.settings, queues=policies)
        downstream.healthy.add("k")
        charts = app.enqueue(app.tasks["charts.fetch"].spec("k"))
        reports = app.enqueue(app.tasks["reports.build"].spec("fine"))
        run_worker(app)
        assert pruner(app, at=time.time() + 60)() == 1
        assert app.store.get_job(charts) is None
        assert app.store.get_job(reports) is not None
        assert pruner(app, at=time.time() + 3601)() == 1
        assert app.store.get_job(reports) is None
    finally:
        app.close()


def test_a_turn_prunes_in_batches_of_the_given_size(dlq_app: App, downstream: Downstream) -> None:
    downstream.healthy.update(f"b/{n}" for n in range(5))
    for n in range(5):
        dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec(f"b/{n}"))
    run_worker(dlq_app)
    later = time.time() + DAY + 1
    assert dlq_app.store.prune_finished(Q, before=later, limit=2) == 2
    assert pruner(dlq_app, at=later, batch=2)() == 3
    assert count(dlq_app, "SELECT count(*) FROM queue_jobs") == 0


def test_a_turn_drops_the_statistics_minutes_older_than_the_day_they_serve(
    dlq_app: App, downstream: Downstream
) -> None:
    for key in ("1", "2"):
        fail(dlq_app, "reports.build", "invalid", key)
    minutes = "SELECT count(*) FROM dlq_stats_minutes"
    assert count(dlq_app, minutes) > 0
    # Kept an hour past the day, for hosts whose clocks run ahead.
    pruner(dlq_app, at=time.time() + DAY)()
    assert count(dlq_app, minutes) > 0
    assert_counts_hold(dlq_app.store)
    later = time.time() + DAY + 2 * 3600
    pruner(dlq_app, at=later)()
    assert count(dlq_app, minutes) == 0
    assert dlq_app.store.dlq_stats(now=later) == scanned(dlq_app.store, later)
    # An old failure's removal after its minute went leaves the last day's count right.
    archive(dlq_app.store, dlq_app.dlq.blobs, older_than_seconds=DAY, now=later)
    assert dlq_app.store.dlq_stats(now=later) == scanned(dlq_app.store, later)
    assert scanned(dlq_app.store, later).total_failed == 0


def test_the_statistics_minutes_are_pruned_once_a_minute(dlq_app: App) -> None:
    clock = [time.time()]
    turn = Pruner(dlq_app.store, [Q], dlq_app.policy, clock=lambda: clock[0])
    stale = "INSERT INTO dlq_stats_minutes (minute, shard, jobs) VALUES (?, 0, 1)"
    minutes = "SELECT count(*) FROM dlq_stats_minutes"
    turn()
    with dlq_app.store.transaction() as execute:
        execute(stale, (int(clock[0] - 2 * DAY) // 60,))
    turn()  # the same minute: not again
    assert count(dlq_app, minutes) == 1
    clock[0] += 60
    turn()
    assert count(dlq_app, minutes) == 0


def test_a_running_worker_prunes_on_its_own(
    store_url: str, tmp_path: Path, downstream: Downstream
) -> None:
    app = make_app(store_url, tmp_path, downstream)
    policies = {**app.settings.queues, Q: QueuePolicy(retention_seconds=0)}
    app.settings = replace(app.settings, queues=policies)
    downstream.healthy.add("k")
    job_id = app.enqueue(app.tasks["charts.fetch"].spec("k"))
    worker = app.worker()
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while app.store.get_job(job_id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.stats.succeeded == 1
        assert app.store.get_job(job_id) is None
    finally:
        worker.stop()
        thread.join()
        app.close()


def test_postgres_vacuums_the_pruned_tables_early_and_never_truncates_them(
    postgres_url: str,
) -> None:
    """Migrations 0012 and 0026: pruning empties the hot tables' pages all day, so
    autovacuum comes at 1% of dead rows, and never cuts the tables' end pages under an
    exclusive lock (a dip of the rate each time in the soak, docs/benchmarks.md)."""
    with psycopg.connect(postgres_url) as pg:
        rows = pg.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            (["queue_jobs", "job_attempts"],),
        ).fetchall()
    options = {name: set(values) for name, values in rows}
    for hot in ("queue_jobs", "job_attempts"):
        assert {"vacuum_truncate=false", "autovacuum_vacuum_scale_factor=0.01"} <= options[hot]
    assert "fillfactor=80" in options["queue_jobs"]
