"""Pausing queues, live workers and unconsumed queues through ops/, on every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.model import JobState
from deadletter.ops import fleet
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.store.fleet import QueueRate, WorkerPresence
from tests.support.operator import OTHER_Q, Downstream, Q, run_worker

DLQ = f"{Q}-dlq"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"waited 30 s for {what}"
        time.sleep(0.02)


def states(app: App, queue: str) -> dict[JobState, int]:
    return {state: n for (q, state), n in app.store.count_states().items() if q == queue}


def test_a_pause_and_a_resume_are_audited_with_their_reason(dlq_app: App) -> None:
    paused = fleet.pause_queue(dlq_app.store, Q, actor="ana", reason=" incident 42 ")
    assert paused.changed and paused.pause is not None
    assert (paused.pause.reason, paused.pause.paused_by) == ("incident 42", "ana")
    again = fleet.pause_queue(dlq_app.store, Q, actor="bo", reason="me too")
    assert not again.changed and again.pause == paused.pause

    assert fleet.resume_queue(dlq_app.store, Q, actor="bo", reason="fixed").changed
    assert not fleet.resume_queue(dlq_app.store, Q, actor="bo", reason="fixed").changed

    entries = audit_entries(dlq_app.store, target=Q).items
    assert [(e.action, e.actor, e.reason) for e in entries] == [
        (AuditAction.QUEUE_RESUME, "bo", "fixed"),
        (AuditAction.QUEUE_PAUSE, "ana", "incident 42"),
    ]


@pytest.mark.parametrize("act", [fleet.pause_queue, fleet.resume_queue])
def test_a_pause_or_resume_needs_a_reason(dlq_app: App, act: Callable[..., object]) -> None:
    with pytest.raises(InvalidRequest, match="reason"):
        act(dlq_app.store, Q, actor="ana", reason="  ")
    assert dlq_app.store.paused_queues() == {}


def test_jobs_of_a_paused_queue_wait_while_other_queues_run(
    dlq_app: App, downstream: Downstream
) -> None:
    downstream.healthy.add("tiles/1")
    fleet.pause_queue(dlq_app.store, Q, actor="ana", reason="incident")
    job = dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    dlq_app.enqueue(dlq_app.tasks["reports.build"].spec("fine"))

    run_worker(dlq_app)  # a burst worker stops: the paused queue's job is not pending

    assert states(dlq_app, Q) == {JobState.QUEUED: 1}
    assert states(dlq_app, OTHER_Q) == {JobState.SUCCEEDED: 1}
    fleet.resume_queue(dlq_app.store, Q, actor="ana", reason="over")
    run_worker(dlq_app)
    stored = dlq_app.store.get_job(job)
    assert stored is not None and stored.status is JobState.SUCCEEDED


def test_a_paused_dlq_captures_dead_letters_and_handles_them_after_its_resume(
    dlq_app: App,
) -> None:
    fleet.pause_queue(dlq_app.store, DLQ, actor="ana", reason="blob store migration")
    job = dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/9"))

    run_worker(dlq_app)

    captured = dlq_app.store.get_job(job)
    assert captured is not None and captured.status is JobState.DEAD_LETTERED
    assert states(dlq_app, DLQ) == {JobState.QUEUED: 1}
    fleet.resume_queue(dlq_app.store, DLQ, actor="ana", reason="done")
    run_worker(dlq_app)
    handled = dlq_app.store.get_job(job)
    assert handled is not None and handled.status is JobState.FAILED


def test_jobs_leased_ahead_are_given_back_uncharged_when_their_queue_is_paused(
    dlq_app: App,
) -> None:
    gate = threading.Event()
    started: list[str] = []

    @dlq_app.task(queue="slow", name="slow.wait")
    def wait(key: str) -> None:
        started.append(key)
        gate.wait(30)

    ids = [dlq_app.enqueue(wait.spec(f"k{n}")) for n in range(5)]
    worker = dlq_app.worker(queues=["slow"], dlq=False, concurrency=1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_until(lambda: states(dlq_app, "slow").get(JobState.RUNNING) == 5, "the lease")
        fleet.pause_queue(dlq_app.store, "slow", actor="ana", reason="incident")
        time.sleep(2.0)  # the worker reads pauses every PAUSES_EVERY (0.5 s)
        gate.set()
        wait_until(lambda: JobState.RUNNING not in states(dlq_app, "slow"), "the give-back")
    finally:
        gate.set()
        worker.stop()
        thread.join()
    assert len(started) == 1
    assert states(dlq_app, "slow") == {JobState.SUCCEEDED: 1, JobState.QUEUED: 4}
    waiting = [dlq_app.store.get_job(job_id) for job_id in ids[1:]]
    assert {job.attempts for job in waiting if job} == {0}


def test_queues_show_counts_pauses_and_live_consumers(dlq_app: App) -> None:
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    fleet.pause_queue(dlq_app.store, OTHER_Q, actor="ana", reason="incident")
    worker = dlq_app.worker(queues=[Q])
    thread = threading.Thread(target=worker.run)
    fleet.pause_queue(dlq_app.store, Q, actor="ana", reason="hold it")
    thread.start()
    try:
        wait_until(lambda: bool(fleet.live_workers(dlq_app.store, gone_after=30)), "a beat")
        views = {view.queue: view for view in fleet.queues(dlq_app.store, gone_after=30)}
        [live] = fleet.live_workers(dlq_app.store, gone_after=30)
    finally:
        worker.stop()
        thread.join()
    assert views[Q].counts == {"queued": 1} and views[Q].waiting == 1
    assert views[Q].consumers == [worker.name] == views[DLQ].consumers
    assert views[OTHER_Q].pause is not None and views[OTHER_Q].counts == {}
    assert (live.name, live.queues, live.running) == (worker.name, (Q, DLQ), ())
    assert fleet.live_workers(dlq_app.store, gone_after=30) == []  # gone when stopped


def test_a_worker_reports_what_it_finishes_per_queue_in_its_heartbeat(dlq_app: App) -> None:
    for n in range(40):
        dlq_app.enqueue(dlq_app.tasks["reports.build"].spec("fine" if n % 4 else "invalid"))
    worker = dlq_app.worker(queues=[OTHER_Q], dlq=False, heartbeat_seconds=0.05)
    seen: list[QueueRate] = []

    def reported() -> bool:
        for live in fleet.live_workers(dlq_app.store, gone_after=30):
            seen.extend(rate for queue, rate in live.throughput.items() if queue == OTHER_Q)
        return any(r.succeeded > 0 for r in seen) and any(r.failed > 0 for r in seen)

    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_until(reported, "a heartbeat with jobs done and jobs failed")
    finally:
        worker.stop()
        thread.join()


def test_a_queues_throughput_sums_its_live_workers(dlq_app: App) -> None:
    now = time.time()
    for name, rate in (("w1", QueueRate(10.0, 1.0)), ("w2", QueueRate(2.5, 0.5))):
        presence = WorkerPresence(name, "box", 1, "1", (Q,), 2, now, now, (), {Q: rate})
        dlq_app.store.beat_worker(presence, forget_before=0)
    stale = WorkerPresence("w3", "box", 1, "1", (Q,), 2, now, now - 300, (), {Q: QueueRate(99, 9)})
    dlq_app.store.beat_worker(stale, forget_before=0)

    views = {view.queue: view for view in fleet.queues(dlq_app.store, gone_after=30)}

    assert views[Q].throughput == QueueRate(12.5, 1.5)
    assert fleet.queue_json(views[Q])["throughput"] == {"succeeded": 12.5, "failed": 1.5}


def test_unconsumed_names_queues_with_work_waiting_and_no_live_worker(dlq_app: App) -> None:
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    dlq_app.enqueue(dlq_app.tasks["reports.build"].spec("fine"))
    fleet.pause_queue(dlq_app.store, OTHER_Q, actor="ana", reason="on purpose")

    assert fleet.unconsumed(dlq_app.store, gone_after=30) == [fleet.Unconsumed(Q, 1)]


def test_a_pause_holds_across_a_restart(dlq_app: App, downstream: Downstream) -> None:
    downstream.healthy.add("tiles/1")
    fleet.pause_queue(dlq_app.store, Q, actor="ana", reason="incident")
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    dlq_app.close()  # as a restart: what the next worker knows is in the database

    run_worker(dlq_app)

    assert states(dlq_app, Q) == {JobState.QUEUED: 1}
    assert list(dlq_app.store.paused_queues()) == [Q]


def test_unconsumed_names_a_dlq_whose_letters_wait_for_a_handler_nobody_runs(
    dlq_app: App,
) -> None:
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/9"))
    dlq_app.worker(dlq=False).run(burst=True)  # fails it twice: a letter waits on the DLQ
    worker = dlq_app.worker(queues=[Q], dlq=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_until(lambda: bool(fleet.live_workers(dlq_app.store, gone_after=30)), "a beat")
        orphans = fleet.unconsumed(dlq_app.store, gone_after=30)
    finally:
        worker.stop()
        thread.join()
    assert orphans == [fleet.Unconsumed(DLQ, 1)]
