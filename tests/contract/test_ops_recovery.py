"""Requeue and abandon on every backend: re-run once, recover, come back, keep history."""

from __future__ import annotations

import threading

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.failures import failure_details
from deadletter.ops.recovery import ActionResult, Outcome, abandon, requeue
from deadletter.store import open_store
from tests.support.operator import (
    Downstream,
    fail,
    recovery_status,
    run_worker,
    table,
)

LIMIT = 1024 * 1024


def redo(dlq_app: App, job_id: str, **options: object) -> ActionResult:
    return requeue(
        dlq_app.store,
        job_id,
        actor="ana",
        reason="partner is back",
        policy=dlq_app.policy,
        payload_limit=dlq_app.settings.payload_limit_bytes,
        **options,
    )


def test_a_requeued_job_runs_again_and_its_recovery_row_becomes_recovered(
    dlq_app: App, downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    downstream.healthy.add("tiles/1")
    result = redo(dlq_app, job_id)
    assert result.outcome is Outcome.REQUEUED and result.done
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.QUEUED and job.lease_owner is None
    assert job.max_retries == job.attempts + dlq_app.policy("charts").max_retries
    run_worker(dlq_app)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED and job.attempts == 3
    assert downstream.runs["tiles/1"] == 3
    assert recovery_status(dlq_app, job_id) == "recovered"
    assert [a.number for a in dlq_app.store.attempts(job_id)] == [1, 2]  # history kept
    [(count,)] = table(dlq_app, "SELECT requeue_count FROM dlq_recovery_queue")
    assert count == 1
    assert dlq_app.store.dlq_stats(now=job.completed_at or 0).recovery["recovered"] == 1


def test_a_requeued_job_that_fails_again_comes_back_to_its_recovery_row(
    dlq_app: App, downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/2")
    redo(dlq_app, job_id)
    run_worker(dlq_app)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    assert [a.number for a in dlq_app.store.attempts(job_id)] == [1, 2, 3, 4]
    assert recovery_status(dlq_app, job_id) == "pending"
    assert len(table(dlq_app, "SELECT * FROM dlq_recovery_queue")) == 1
    failures = table(dlq_app, "SELECT dead_letter_id FROM dlq_failures WHERE job_id = ?", job_id)
    assert len(failures) == 2
    [(linked,)] = table(dlq_app, "SELECT dead_letter_id FROM dlq_recovery_queue")
    details = failure_details(dlq_app.store, dlq_app.dlq.blobs, job_id)
    assert details is not None and details.failure.dead_letter_id == linked
    assert [f.dead_letter_id for f in details.earlier_failures] != [linked]


def test_a_user_error_gets_a_recovery_row_when_requeued_and_comes_back_to_it(
    dlq_app: App, downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "reports.build", "invalid", "q3")
    assert recovery_status(dlq_app, job_id) is None
    assert redo(dlq_app, job_id).outcome is Outcome.REQUEUED
    assert recovery_status(dlq_app, job_id) == "requeued"
    run_worker(dlq_app)  # fails again as a USER_ERROR, which the handler does not route to recovery
    assert recovery_status(dlq_app, job_id) == "pending"


def test_a_corrected_payload_is_run_and_the_old_one_kept(
    dlq_app: App, downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/typo")
    downstream.healthy.add("tiles/3")
    result = redo(dlq_app, job_id, payload={"args": ["tiles/3"], "kwargs": {}})
    assert result.outcome is Outcome.REQUEUED
    run_worker(dlq_app)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED
    assert job.payload == {"args": ["tiles/3"], "kwargs": {}}
    details = failure_details(dlq_app.store, dlq_app.dlq.blobs, job_id)
    assert details is not None
    [old] = details.payload_history
    assert old.payload == {"args": ["tiles/typo"], "kwargs": {}} and old.replaced_by == "ana"
    actions = [e.action for e in audit_entries(dlq_app.store, target=job_id).items]
    assert sorted(actions) == [AuditAction.EDIT, AuditAction.REQUEUE]


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "payload",
    [
        ["tiles/3"],
        {"args": "tiles/3"},
        {"argv": []},
        {"args": ["x" * (1024 * 1024)]},  # over the 1 MiB an enqueue takes
        {"args": [nested(900)]},  # deeper than any enqueue takes
        {"args": [float("nan")]},
        {"args": ["\ud800"]},
    ],
)
def test_a_payload_a_task_cannot_take_is_refused_before_anything_changes(
    dlq_app: App, payload: object
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/4")
    with pytest.raises(InvalidRequest, match="payload"):
        redo(dlq_app, job_id, payload=payload)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    assert audit_entries(dlq_app.store).items == []


def test_two_operators_requeueing_at_once_rerun_the_job_once(
    dlq_app: App, downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/5")
    downstream.healthy.add("tiles/5")
    start = threading.Barrier(2)
    results: list[ActionResult] = []

    def operator(name: str) -> None:
        store = open_store(dlq_app.store.url)  # an operator of their own: another connection
        try:
            start.wait()
            results.append(
                requeue(store, job_id, actor=name, policy=dlq_app.policy, payload_limit=LIMIT)
            )
        finally:
            store.close()

    threads = [threading.Thread(target=operator, args=(n,)) for n in ("ana", "bo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == [Outcome.ALREADY_REQUEUED.value, Outcome.REQUEUED.value]
    run_worker(dlq_app)
    assert downstream.runs["tiles/5"] == 3  # two attempts, then one re-run
    [(count,)] = table(dlq_app, "SELECT requeue_count FROM dlq_recovery_queue")
    assert count == 1
    assert len(audit_entries(dlq_app.store, action=AuditAction.REQUEUE).items) == 1


def test_requeue_of_what_is_not_failed_says_why(dlq_app: App) -> None:
    assert redo(dlq_app, "no-such-job").outcome is Outcome.NOT_FOUND
    waiting = dlq_app.tasks["charts.fetch"].enqueue("never-run")
    assert redo(dlq_app, waiting).outcome is Outcome.NOT_FAILED
    assert audit_entries(dlq_app.store).items == []


def test_abandon_needs_a_reason_and_is_recorded_once(dlq_app: App) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/6")
    for reason in ("", "   "):
        with pytest.raises(InvalidRequest, match="reason"):
            abandon(dlq_app.store, job_id, actor="ana", reason=reason)
    assert recovery_status(dlq_app, job_id) == "pending"
    first = abandon(dlq_app.store, job_id, actor="ana", reason="customer cancelled")
    second = abandon(dlq_app.store, job_id, actor="bo", reason="same")
    assert (first.outcome, second.outcome) == (Outcome.ABANDONED, Outcome.ALREADY_ABANDONED)
    assert recovery_status(dlq_app, job_id) == "abandoned"
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    [record] = audit_entries(dlq_app.store, target=job_id).items
    assert (record.action, record.actor, record.reason) == (
        AuditAction.ABANDON,
        "ana",
        "customer cancelled",
    )
    assert dlq_app.store.dlq_stats(now=0).recovery["abandoned"] == 1


def test_an_abandoned_job_may_still_be_requeued_on_its_own(dlq_app: App) -> None:
    job_id = fail(dlq_app, "reports.build", "invalid", "q4")
    assert abandon(dlq_app.store, job_id, actor="ana", reason="bad input").done
    assert recovery_status(dlq_app, job_id) == "abandoned"
    assert redo(dlq_app, job_id).outcome is Outcome.REQUEUED
    assert recovery_status(dlq_app, job_id) == "requeued"


def test_a_requeued_job_gets_its_tasks_own_retries_not_its_queues(
    dlq_app: App, downstream: Downstream
) -> None:
    @dlq_app.task(queue="charts", name="charts.stubborn", max_retries=3)
    def stubborn(key: str) -> None:
        downstream.call(key)

    job_id = fail(dlq_app, "charts.stubborn", "tiles/9")
    assert len(dlq_app.store.attempts(job_id)) == 4  # the task's 3 retries, not the queue's 1
    # The operator's app knows no task: the budget comes from the job itself.
    operator = App(dlq_app.settings)
    try:
        result = redo(operator, job_id)
    finally:
        operator.close()
    assert result.outcome is Outcome.REQUEUED
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.max_retries == 4 + 3
    run_worker(dlq_app)
    assert len(dlq_app.store.attempts(job_id)) == 8
