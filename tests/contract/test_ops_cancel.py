"""Cancelling jobs through ops/, on every backend: waiting jobs go at once, running ones
are told by a real worker and go when their run ends."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from deadletter.app import App
from deadletter.errors import InvalidInput, InvalidRequest
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.cancel import cancel
from tests.support.operator import OTHER_Q, Q, fail, in_thread, polling, run_worker, table


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
        f"job {failed} is failed: only a waiting or running job can be cancelled",
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


def test_running_jobs_told_to_stop_end_cancelled_sync_or_async(dlq_app: App) -> None:
    started, told = threading.Semaphore(0), dict[str, bool]()
    polling(dlq_app, started, told)

    @dlq_app.task(queue=Q, name="charts.stream")
    async def stream() -> None:
        started.release()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            told["async"] = True
            raise

    render = dlq_app.tasks["charts.render"]
    ids = [render.enqueue("return"), render.enqueue("raise"), stream.enqueue()]
    # A heartbeat every 0.5 s: the worker learns of the cancel soon after it is asked,
    # and a busy machine does not hold it back past the lease (a reclaim would take it).
    worker = dlq_app.worker(dlq=False, lease_seconds=1.5, concurrency=3)
    thread = in_thread(worker)
    assert all(started.acquire(timeout=30) for _ in ids)

    dry = cancel(dlq_app.store, job_ids=ids, actor="ana", reason="runaway", dry_run=True)
    assert sorted(job.id for job in dry.stopping) == sorted(ids) and dry.jobs == []
    assert audit_entries(dlq_app.store, target=ids[0]).items == []
    done = cancel(dlq_app.store, job_ids=[], task="charts.render", actor="ana", reason="runaway")
    assert sorted(job.id for job in done.stopping) == sorted(ids[:2]) and done.refused == []
    assert cancel(dlq_app.store, job_ids=[ids[2]], actor="ana", reason="runaway").stopping
    thread.join(60)

    assert told == {"return": True, "raise": True, "async": True}
    assert [dlq_app.store.get_job(i) for i in ids] == [None, None, None]
    assert table(dlq_app, "SELECT count(*) FROM job_attempts") == [(0,)]
    stats = worker.stats
    assert (stats.cancelled, stats.succeeded, stats.retried, stats.dead_lettered) == (3, 0, 0, 0)
    [entry] = audit_entries(dlq_app.store, target=ids[1]).items
    assert (entry.action, entry.actor, entry.reason) == (AuditAction.CANCEL, "ana", "runaway")
    assert entry.details["status"] == "running"


def test_a_run_that_ends_before_its_worker_learns_of_the_cancel_keeps_its_outcome(
    dlq_app: App,
) -> None:
    started, asked = threading.Semaphore(0), threading.Event()

    @dlq_app.task(queue=Q, name="charts.quick")
    def quick() -> None:
        started.release()
        asked.wait(30)

    job_id = quick.enqueue()
    # The first heartbeat is 20 s after the worker starts: long after the run ended.
    thread = in_thread(dlq_app.worker(dlq=False, lease_seconds=60))
    assert started.acquire(timeout=30)
    assert cancel(dlq_app.store, job_ids=[job_id], actor="ana", reason="late").stopping
    asked.set()
    thread.join(60)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED


def test_a_running_dead_letter_is_not_stopped(dlq_app: App) -> None:
    @dlq_app.task(queue=Q, name="charts.broken", max_retries=0)
    def broken() -> None:
        raise InvalidInput("no such chart")

    broken.enqueue()
    dlq_app.worker(dlq=False).run(burst=True)
    now = time.time()
    [letter] = dlq_app.store.lease([f"{Q}-dlq"], limit=1, worker="dlq", now=now, lease_seconds=60)
    [refusal] = cancel(dlq_app.store, job_ids=[letter.id], actor="ana", reason="r").refused
    assert refusal.message.startswith(f"job {letter.id} is running but has a history")


def test_a_waiting_dead_letter_is_not_cancelled_its_failure_would_be_lost(dlq_app: App) -> None:
    @dlq_app.task(queue=Q, name="charts.broken", max_retries=0)
    def broken() -> None:
        raise InvalidInput("no such chart")

    job_id = broken.enqueue()
    dlq_app.worker(dlq=False).run(burst=True)
    [letter] = dlq_app.store.list_jobs(queue=f"{Q}-dlq")

    by_id = cancel(dlq_app.store, job_ids=[letter.id], actor="ana", reason="r")
    by_queue = cancel(dlq_app.store, job_ids=[], queue=f"{Q}-dlq", actor="ana", reason="r")

    assert by_id.jobs == by_queue.jobs == []
    assert by_id.refused[0].message.startswith(f"job {letter.id} is queued but has a history")
    assert dlq_app.store.get_job(letter.id) is not None
    dlq_app.worker().run(burst=True)  # the handler still records the job's failure
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
