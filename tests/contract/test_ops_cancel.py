"""Cancelling waiting jobs through ops/, on every backend."""

from __future__ import annotations

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.cancel import cancel
from tests.support.operator import OTHER_Q, Q, fail, run_worker, table


def later(app: App, task: str, *args: str) -> str:
    """A job scheduled an hour from now."""
    return app.enqueue(app.tasks[task].spec(*args).options(delay=3600))


def test_a_dry_run_names_the_jobs_and_changes_nothing(dlq_app: App) -> None:
    ids = [later(dlq_app, "charts.fetch", f"tiles/{i}") for i in range(3)]
    other = later(dlq_app, "reports.build", "invalid", "7")
    found = cancel(
        dlq_app.store, job_ids=[], queue=Q, actor="ana", reason="bad deploy", dry_run=True
    )
    assert found.dry_run and sorted(job.id for job in found.jobs) == sorted(ids)
    assert all(dlq_app.store.get_job(i) is not None for i in [*ids, other])
    assert audit_entries(dlq_app.store, target=ids[0]).items == []


def test_cancelled_jobs_go_audited_and_no_worker_runs_them(dlq_app: App) -> None:
    ids = [dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec(f"tiles/{i}")) for i in range(3)]
    kept = dlq_app.enqueue(dlq_app.tasks["reports.build"].spec("invalid", "7"))
    done = cancel(
        dlq_app.store, job_ids=ids[:2], task="charts.fetch", actor="ana", reason=" bad deploy "
    )
    assert sorted(job.id for job in done.jobs) == sorted(ids[:2]) and done.refused == []
    assert [dlq_app.store.get_job(i) for i in ids[:2]] == [None, None]
    [entry] = audit_entries(dlq_app.store, target=ids[0]).items
    assert (entry.action, entry.actor, entry.reason) == (AuditAction.CANCEL, "ana", "bad deploy")
    assert entry.details["task"] == "charts.fetch" and entry.details["status"] == "queued"

    run_worker(dlq_app)
    assert table(dlq_app, "SELECT job_id FROM job_attempts WHERE job_id = ?", ids[0]) == []
    ran = [dlq_app.store.get_job(i) for i in (ids[2], kept)]
    assert all(job is not None and job.status is not JobState.QUEUED for job in ran)


def test_a_job_that_is_not_waiting_or_has_a_history_is_refused(dlq_app: App) -> None:
    failed = fail(dlq_app, "reports.build", "invalid", "1")
    done = cancel(dlq_app.store, job_ids=[failed, "nope", failed], actor="ana", reason="cleanup")
    assert done.jobs == []
    assert [r.message for r in done.refused] == [
        f"job {failed} is failed: only a waiting job can be cancelled",
        "no job nope",
    ]
    assert dlq_app.store.get_job(failed) is not None
    assert cancel(dlq_app.store, job_ids=[], queue=OTHER_Q, actor="a", reason="r").jobs == []


def test_an_empty_filter_or_a_blank_reason_is_refused(dlq_app: App) -> None:
    job = later(dlq_app, "charts.fetch", "tiles/1")
    with pytest.raises(InvalidRequest, match="queue"):
        cancel(dlq_app.store, job_ids=[], actor="ana", reason="all of them")
    with pytest.raises(InvalidRequest, match="reason"):
        cancel(dlq_app.store, job_ids=[job], actor="ana", reason=" ")
    assert dlq_app.store.get_job(job) is not None
