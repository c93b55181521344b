"""Store.record_host_events on every backend: a job of another system is dead-lettered
here with its whole history in one transaction, once, and handled like a native one."""

from __future__ import annotations

import time

from deadletter.app import App
from deadletter.model import (
    ErrorClass,
    HostAttempt,
    HostEvent,
    HostGaveUp,
    HostSucceeded,
    JobState,
    Origin,
)
from deadletter.ops.recovery import abandon, requeue
from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.store.hosts import adopted_job_id
from tests.support.operator import recovery_status, run_worker, table

ORIGIN = Origin("celery", "emails", "mail.send", "m1", {"args": [7], "kwargs": {}})


def attempt(event_id: str, at: float, message_id: str = "m1", status: int = 503) -> HostAttempt:
    return HostAttempt(
        event_id=event_id,
        system="celery",
        message_id=message_id,
        started_at=at,
        ended_at=at + 0.5,
        worker="w1",
        error_type="tests.HTTPError",
        message=f"HTTP {status}: unavailable",
        traceback="Traceback ...",
        http_status=status,
        error_class=ErrorClass.RECOVERABLE,
        rule="status:503",
    )


def gave_up(event_id: str, at: float, message_id: str = "m1") -> HostGaveUp:
    return HostGaveUp(
        attempt=attempt(event_id, at, message_id),
        origin=ORIGIN,
        queue="celery",
        dead_letter_queue="celery-dlq",
        dlq_max_retries=3,
        reason="retries exhausted after 3 attempts",
        labels={"origin": "celery"},
    )


def fail_three_times(app: App) -> str:
    events: list[HostEvent] = [attempt("a1", 100.0), attempt("a2", 101.0), gave_up("a3", 102.0)]
    [job_id] = app.store.record_host_events(events, now=103.0)
    return job_id


def test_a_give_up_dead_letters_the_job_with_every_attempt_in_one_go(dlq_app: App) -> None:
    job_id = fail_three_times(dlq_app)
    assert job_id == adopted_job_id("celery", "m1")
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED
    assert (job.queue, job.task, job.attempts, job.payload) == (
        "celery",
        "mail.send",
        3,
        ORIGIN.arguments,
    )
    assert [a.number for a in dlq_app.store.attempts(job_id)] == [1, 2, 3]
    [letter] = dlq_app.store.list_jobs(queue="celery-dlq")
    assert letter.id == f"dl-{job_id}-3" and letter.task == DEAD_LETTER_TASK
    assert [a["number"] for a in letter.payload["attempts"]] == [1, 2, 3]
    assert letter.payload["origin"]["original_id"] == "m1"
    assert dlq_app.store.origin(job_id) == ORIGIN
    assert dlq_app.store.origin("job_native") is None


def test_events_recorded_twice_are_recorded_once(dlq_app: App) -> None:
    fail_three_times(dlq_app)
    again: list[HostEvent] = [attempt("a1", 100.0), attempt("a2", 101.0), gave_up("a3", 102.0)]
    assert dlq_app.store.record_host_events(again, now=104.0) == []
    assert dlq_app.store.record_host_events([gave_up("a4", 105.0)], now=105.0) == []
    assert len(dlq_app.store.attempts(adopted_job_id("celery", "m1"))) == 3
    assert len(dlq_app.store.list_jobs(queue="celery-dlq")) == 1


def test_a_success_after_retries_drops_its_pending_attempts(dlq_app: App) -> None:
    store = dlq_app.store
    store.record_host_events([attempt("b1", 100.0, "m2")], now=101.0)
    store.record_host_events([HostSucceeded("s1", "celery", "m2", 102.0)], now=102.0)
    assert table(dlq_app, "SELECT count(*) FROM host_attempts") == [(0,)]
    assert store.list_jobs(queue="celery") == []


def test_an_adopted_job_is_handled_requeued_to_its_host_and_recovered(dlq_app: App) -> None:
    dlq_app.add_foreign_queue("celery")
    job_id = fail_three_times(dlq_app)
    run_worker(dlq_app)  # the DLQ handler: failed, classified, routed
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    assert recovery_status(dlq_app, job_id) == "pending"  # RECOVERABLE: recovery queue
    result = requeue(
        dlq_app.store, job_id, actor="ana", policy=dlq_app.policy, payload_limit=1 << 20
    )
    assert result.done
    [redrive] = dlq_app.store.list_jobs(queue="deadletter.redrive")
    assert redrive.id == f"redrive-{job_id}-1"
    assert redrive.payload == {"args": [job_id, 1], "kwargs": {}}
    store = dlq_app.store
    assert store.prepare_send("celery", "m1-redrive-1", job_id) is False
    store.mark_sent("celery", "m1-redrive-1", at=time.time())
    assert store.prepare_send("celery", "m1-redrive-1", job_id) is True  # sent once
    store.record_host_events([HostSucceeded("s2", "celery", "m1-redrive-1", 200.0)], now=200.0)
    job = store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED and job.attempts == 4
    assert recovery_status(dlq_app, job_id) == "recovered"


def test_a_redriven_job_that_fails_again_is_a_new_failure_of_the_same_job(dlq_app: App) -> None:
    dlq_app.add_foreign_queue("celery")
    job_id = fail_three_times(dlq_app)
    run_worker(dlq_app)
    requeue(dlq_app.store, job_id, actor="ana", policy=dlq_app.policy, payload_limit=1 << 20)
    dlq_app.store.prepare_send("celery", "m1-redrive-1", job_id)
    again: list[HostEvent] = [
        attempt("c1", 300.0, "m1-redrive-1"),
        gave_up("c2", 301.0, "m1-redrive-1"),
    ]
    assert dlq_app.store.record_host_events(again, now=302.0) == [job_id]
    assert [a.number for a in dlq_app.store.attempts(job_id)] == [1, 2, 3, 4, 5]
    run_worker(dlq_app)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED and job.attempts == 5
    assert recovery_status(dlq_app, job_id) == "pending"
    failures = table(dlq_app, "SELECT dead_letter_id FROM dlq_failures WHERE job_id = ?", job_id)
    assert sorted(f for (f,) in failures) == [f"dl-{job_id}-3", f"dl-{job_id}-5"]


def test_an_abandoned_adopted_job_sends_nothing(dlq_app: App) -> None:
    dlq_app.add_foreign_queue("celery")
    job_id = fail_three_times(dlq_app)
    run_worker(dlq_app)
    assert abandon(dlq_app.store, job_id, actor="ana", reason="obsolete").done
    assert dlq_app.store.list_jobs(queue="deadletter.redrive") == []
