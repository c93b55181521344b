"""Bulk re-drive on every backend: dry run, never all by accident, pace, control, halt."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.bulk import BulkAction, BulkProgress, BulkRun, StopReason, plan_bulk
from deadletter.ops.filters import FailureFilter
from deadletter.ops.recovery import abandon, requeue
from tests.support.operator import (
    OTHER_Q,
    Downstream,
    Q,
    fail,
    run_worker,
    table,
)


def fail_many(dlq_app: App, count: int) -> list[str]:
    fetch = dlq_app.tasks["charts.fetch"]
    job_ids = dlq_app.enqueue_many(fetch.spec(f"tiles/{i}") for i in range(count))
    run_worker(dlq_app)
    return job_ids


def bulk(dlq_app: App, failure_filter: FailureFilter, **options: Any) -> BulkRun:
    settings: dict[str, Any] = {
        "action": BulkAction.REQUEUE,
        "actor": "ana",
        "reason": "partner is back",
        "rate": 1000.0,
        **options,
    }
    return BulkRun(dlq_app.store, failure_filter, policy=dlq_app.policy, **settings)


def queued(dlq_app: App) -> int:
    [(count,)] = table(dlq_app, "SELECT count(*) FROM queue_jobs WHERE status = 'queued'")
    return int(count)


def test_the_dry_run_counts_exactly_what_the_run_moves(dlq_app: App) -> None:
    job_ids = fail_many(dlq_app, 12)
    fail(dlq_app, "reports.build", "invalid", "q1")
    abandon(dlq_app.store, job_ids[0], actor="bo", reason="obsolete tile")
    plan = plan_bulk(dlq_app.store, FailureFilter(queue=Q), sample_size=5)
    assert plan.count == 11 and len(plan.sample) == 5
    assert {item.queue for item in plan.sample} == {Q}
    result = bulk(dlq_app, FailureFilter(queue=Q), batch_size=4).run()
    assert (result.stopped, result.progress.moved, result.progress.skipped) == (
        StopReason.DONE,
        11,
        0,
    )
    assert result.progress.planned == 11 and queued(dlq_app) == 11
    job = dlq_app.store.get_job(job_ids[0])
    assert job is not None and job.status.value == "failed"  # abandoned: left alone
    run_id = result.progress.run_id
    per_job = audit_entries(dlq_app.store, action=AuditAction.REQUEUE).items
    assert len(per_job) == 11 and {e.details["bulk_run"] for e in per_job} == {run_id}
    [started] = audit_entries(dlq_app.store, action=AuditAction.BULK_REQUEUE).items
    [stopped] = audit_entries(dlq_app.store, action=AuditAction.BULK_STOPPED).items
    assert started.id == run_id and started.details["planned"] == 11
    assert started.target == f"queue={Q}" and started.reason == "partner is back"
    assert stopped.details["stopped"] == "done" and stopped.details["moved"] == 11


def test_an_empty_filter_is_refused_unless_all_is_said(dlq_app: App) -> None:
    fail_many(dlq_app, 2)
    fail(dlq_app, "reports.build", "invalid", "q1")
    with pytest.raises(InvalidRequest, match="filter"):
        plan_bulk(dlq_app.store, FailureFilter())
    with pytest.raises(InvalidRequest, match="filter"):
        bulk(dlq_app, FailureFilter())
    assert plan_bulk(dlq_app.store, FailureFilter(), all=True).count == 3
    with pytest.raises(InvalidRequest, match="reason"):
        bulk(dlq_app, FailureFilter(queue=Q), reason=" ")
    assert bulk(dlq_app, FailureFilter(), all=True).run().progress.moved == 3


def test_a_job_is_chosen_by_its_latest_failure(dlq_app: App) -> None:
    job_id = fail(dlq_app, "reports.build", "server_error", "1")
    edit = {"args": ["mystery", "2"], "kwargs": {}}
    limit = dlq_app.settings.payload_limit_bytes
    requeue(
        dlq_app.store, job_id, actor="ana", policy=dlq_app.policy, payload_limit=limit, payload=edit
    )
    run_worker(dlq_app)  # now it fails as UNKNOWN
    assert plan_bulk(dlq_app.store, FailureFilter(error_class="SYSTEM_ERROR")).count == 0
    assert plan_bulk(dlq_app.store, FailureFilter(error_class="UNKNOWN")).count == 1


def test_bulk_abandon_moves_recovery_rows_and_never_reruns(dlq_app: App) -> None:
    job_ids = fail_many(dlq_app, 3)
    result = bulk(dlq_app, FailureFilter(queue=Q), action=BulkAction.ABANDON).run()
    assert result.progress.moved == 3 and queued(dlq_app) == 0
    statuses = table(dlq_app, "SELECT DISTINCT status FROM dlq_recovery_queue")
    assert statuses == [("abandoned",)]
    assert plan_bulk(dlq_app.store, FailureFilter(job_ids=tuple(job_ids))).count == 0


def test_the_run_is_paced(dlq_app: App) -> None:
    fail_many(dlq_app, 40)
    run = bulk(dlq_app, FailureFilter(queue=Q), rate=20.0)
    results = []
    thread = threading.Thread(target=lambda: results.append(run.run()))
    thread.start()
    time.sleep(0.5)
    moved = queued(dlq_app)
    run.cancel()
    thread.join()
    # 20 jobs/s for half a second: about 10, never the 40 an unpaced run moves at once.
    assert 2 <= moved <= 16
    [result] = results
    assert result.stopped is StopReason.CANCELLED and result.progress.moved == queued(dlq_app) < 40


def test_pause_resume_and_cancel_from_another_thread(dlq_app: App) -> None:
    fail_many(dlq_app, 10)
    paused = threading.Event()

    def pause_after_each_batch(progress: BulkProgress) -> None:
        run.pause()
        paused.set()

    run = bulk(dlq_app, FailureFilter(queue=Q), batch_size=2, on_progress=pause_after_each_batch)
    results = []
    thread = threading.Thread(target=lambda: results.append(run.run()))
    thread.start()
    assert paused.wait(10)
    time.sleep(0.3)
    assert run.progress.paused and run.progress.moved == 2 and queued(dlq_app) == 2
    paused.clear()
    run.resume()
    assert paused.wait(10)
    run.cancel()
    thread.join()
    [result] = results
    assert result.stopped is StopReason.CANCELLED
    assert result.progress.moved == 4 and queued(dlq_app) == 4


@pytest.mark.parametrize("healthy", [False, True])
def test_the_run_halts_when_redriven_jobs_fail_again(
    dlq_app: App, downstream: Downstream, healthy: bool
) -> None:
    job_ids = fail_many(dlq_app, 20)
    if healthy:
        downstream.healthy.update(f"tiles/{i}" for i in range(20))
    # Each batch is run by a worker before the run checks on it: no timing involved.
    run = bulk(
        dlq_app,
        FailureFilter(queue=Q),
        batch_size=5,
        halt_after=5,
        halt_ratio=0.5,
        check_interval=0,
        on_progress=lambda _: run_worker(dlq_app),
    )
    result = run.run()
    if healthy:
        assert (result.stopped, result.progress.moved) == (StopReason.DONE, 20)
        assert (result.progress.settled, result.progress.failing) == (20, 0)
        return
    assert result.stopped is StopReason.HALTED and "failed again" in result.detail
    assert (result.progress.moved, result.progress.settled, result.progress.failing) == (5, 5, 5)
    redriven = table(dlq_app, "SELECT count(*) FROM queue_jobs WHERE requeues > 0")
    assert redriven == [(5,)]
    pending = table(dlq_app, "SELECT count(*) FROM dlq_recovery_queue WHERE status = 'pending'")
    assert pending == [(len(job_ids),)]
    [stopped] = audit_entries(dlq_app.store, action=AuditAction.BULK_STOPPED).items
    assert stopped.details["stopped"] == "halted"


def test_another_queue_is_untouched(dlq_app: App) -> None:
    fail_many(dlq_app, 2)
    other = fail(dlq_app, "reports.build", "server_error", "1")
    bulk(dlq_app, FailureFilter(queue=OTHER_Q)).run()
    job = dlq_app.store.get_job(other)
    assert job is not None and job.status.value == "queued" and queued(dlq_app) == 1
