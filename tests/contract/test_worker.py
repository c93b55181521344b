"""The worker over every backend: success, retries, dead letters, leases, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import InvalidArgument, InvalidInput, PayloadError, Retry
from deadletter.model import ErrorClass, JobState, LeasedJob
from deadletter.store.base import DEAD_LETTER_TASK, dead_letter_id
from deadletter.tasks import JobSpec
from deadletter.worker.slots import current_job
from tests.support.ghost import began_and_vanished, lose_workers

Q = "chart-processing"
DLQ = "chart-processing-dlq"


class HTTPError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.fixture
def app(store_url: str) -> Iterator[App]:
    application = make_app(store_url)
    yield application
    application.close()


def make_app(url: str, **worker: Any) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "worker": {"poll_interval": 0.02, "lease_seconds": 5, **worker},
            "queues": {Q: {"backoff_base": 0.0, "max_retries": 3}},
        }
    )
    return App(settings)


def run(app: App, **overrides: Any) -> None:
    app.worker(dlq=False, **overrides).run(burst=True)


def states(app: App, ids: list[str]) -> list[JobState]:
    return [job.status for job in (app.store.get_job(i) for i in ids) if job is not None]


def test_jobs_succeed_and_counts_add_up(app: App) -> None:
    done: list[int] = []

    @app.task(queue=Q)
    def noop(n: int) -> None:
        done.append(n)

    ids = app.enqueue_many(noop.spec(n) for n in range(60))
    run(app)
    assert states(app, ids) == [JobState.SUCCEEDED] * 60
    assert sorted(done) == list(range(60))
    assert app.store.count_states() == {(Q, JobState.SUCCEEDED): 60}


def test_exhausted_retries_dead_letter_with_full_history(app: App) -> None:
    @app.task(queue=Q)
    def broken(site_name: str) -> None:
        raise KeyError(f"no series for {site_name}")

    spec = broken.spec("building-a").options(labels={"site_name": "building-a"})
    job_id = app.enqueue(spec)
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED
    assert job.attempts == 4 and job.retry_count == 3
    letters = app.store.list_jobs(queue=DLQ)
    assert len(letters) == 1
    letter = letters[0]
    assert letter.task == DEAD_LETTER_TASK and letter.status is JobState.QUEUED
    assert letter.payload["job_id"] == job_id
    assert letter.payload["labels"] == {"site_name": "building-a"}
    assert letter.payload["reason"] == "retries exhausted after 4 attempts"
    attempts = letter.payload["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]
    for attempt in attempts:
        assert attempt["error_type"] == "builtins.KeyError"
        assert "no series for building-a" in attempt["message"]
        assert "raise KeyError" in attempt["traceback"]
        assert attempt["ended_at"] >= attempt["started_at"] > 0
        assert attempt["worker"]


def test_permanent_failure_is_not_retried(app: App) -> None:
    @app.task(queue=Q)
    def validate() -> None:
        raise InvalidInput("date range end before start")

    job_id = validate.enqueue()
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED and job.attempts == 1


def test_user_error_is_not_retried_and_http_status_is_recorded(app: App) -> None:
    @app.task(queue=Q)
    def fetch() -> None:
        raise HTTPError(404)

    job_id = fetch.enqueue()
    run(app)
    [attempt] = app.store.attempts(job_id)
    assert attempt.http_status == 404
    assert attempt.error_class is ErrorClass.USER_ERROR


def test_retry_signal_and_recoverable_errors_retry_then_succeed(app: App) -> None:
    @app.task(queue=Q)
    def flaky() -> None:
        attempt = current_job.get().attempt
        if attempt == 1:
            raise Retry("upstream busy", delay=0)
        if attempt == 2:
            raise HTTPError(503)

    job_id = flaky.enqueue()
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED and job.attempts == 3
    assert [a.error_class for a in app.store.attempts(job_id)][1] is ErrorClass.RECOVERABLE


def test_async_tasks_run_on_the_shared_loop(app: App) -> None:
    @app.task(queue=Q)
    async def pause(seconds: float) -> None:
        await asyncio.sleep(seconds)

    ids = app.enqueue_many(pause.spec(0.01) for _ in range(10))
    run(app)
    assert states(app, ids) == [JobState.SUCCEEDED] * 10


def test_sync_timeout_interrupts_the_task(app: App) -> None:
    @app.task(queue=Q, timeout=0.2, max_retries=0)
    def spin() -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            pass

    started = time.monotonic()
    job_id = spin.enqueue()
    run(app)
    assert time.monotonic() - started < 10
    [attempt] = app.store.attempts(job_id)
    assert attempt.error_type == "deadletter.errors.JobTimeout"
    assert attempt.error_class is ErrorClass.RECOVERABLE


def test_async_timeout_cancels_the_task(app: App) -> None:
    @app.task(queue=Q, timeout=0.2, max_retries=0)
    async def hang() -> None:
        await asyncio.sleep(30)

    job_id = hang.enqueue()
    run(app)
    [attempt] = app.store.attempts(job_id)
    assert attempt.error_type == "deadletter.errors.JobTimeout"


def test_unknown_task_ends_in_the_dlq_with_a_clear_error(app: App) -> None:
    @app.task(queue=Q, name="known")
    def known() -> None:
        return None

    job_id = app.enqueue(JobSpec(task="missing", queue=Q, args=(), kwargs={}))
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED
    assert "task 'missing' is not registered" in (job.last_error or "")


def test_payloads_must_be_json_and_small(app: App) -> None:
    @app.task(queue=Q)
    def take(value: object) -> None:
        return None

    with pytest.raises(PayloadError, match="not JSON"):
        take.enqueue({1, 2})
    with pytest.raises(PayloadError, match="over the limit"):
        take.enqueue("x" * (1024 * 1024 + 1))
    assert app.store.count_states() == {}


def test_a_priority_or_retry_count_out_of_an_integer_column_is_refused_on_both_backends(
    app: App,
) -> None:
    @app.task(queue=Q)
    def take() -> None:
        return None

    @app.task(queue=Q, max_retries=2**31)
    def persist() -> None:
        return None

    with pytest.raises(InvalidArgument, match=r"priority of task .* not 1,099,511,627,776"):
        app.enqueue(take.spec().options(priority=2**40))
    with pytest.raises(InvalidArgument, match=r"max_retries of task .* not 2,147,483,648"):
        persist.enqueue()
    app.enqueue(take.spec().options(priority=2**31 - 1))
    assert app.store.count_states() == {(Q, JobState.QUEUED): 1}


def test_idempotency_key_gives_back_the_existing_job(app: App) -> None:
    @app.task(queue=Q)
    def once() -> None:
        return None

    first = app.enqueue(once.spec().options(idempotency_key="report-2024-10-12"))
    second = app.enqueue(once.spec().options(idempotency_key="report-2024-10-12"))
    assert first == second
    assert sum(app.store.count_states().values()) == 1


def test_delayed_job_waits_for_its_time(app: App) -> None:
    ran_at: list[float] = []

    @app.task(queue=Q)
    def later() -> None:
        ran_at.append(time.time())

    enqueued = time.time()
    app.enqueue(later.spec().options(delay=0.5))
    run(app)
    assert ran_at and ran_at[0] - enqueued >= 0.45


def test_priority_orders_ready_jobs(store_url: str) -> None:
    app = make_app(store_url, concurrency=1, batch_size=1)
    order: list[int] = []

    @app.task(queue=Q)
    def record(n: int) -> None:
        order.append(n)

    app.enqueue_many([record.spec(1), record.spec(2).options(priority=5), record.spec(3)])
    run(app)
    app.close()
    assert order == [2, 1, 3]


def test_a_dead_letter_is_handled_before_the_backlog_queued_ahead_of_it(
    store_url: str, tmp_path: Path
) -> None:
    settings = settings_from_mapping(
        {
            "database_url": store_url,
            "blob_url": str(tmp_path / "blobs"),
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "worker": {"poll_interval": 0.02, "batch_size": 10, "concurrency": 1},
        }
    )
    app = App(settings)

    @app.task(queue=Q)
    def validate() -> None:
        raise InvalidInput("date range end before start")

    @app.task(queue=Q)
    def noop(n: int) -> None:
        return None

    failing = validate.enqueue()
    backlog = app.enqueue_many(noop.spec(n) for n in range(60))
    app.worker().run(burst=True)

    letter = app.store.get_job(dead_letter_id(failing, 1))
    assert letter is not None and letter.completed_at is not None
    handled = letter.completed_at
    done = [app.store.get_job(job_id) for job_id in backlog]
    after = [j for j in done if j and j.completed_at and j.completed_at > handled]
    # Leased by age, the letter came after all 60; now the lease after its failure takes it.
    assert len(after) >= 40
    app.close()


def test_lost_lease_counts_as_a_failed_attempt(app: App) -> None:
    @app.task(queue=Q)
    def work() -> None:
        return None

    job_id = work.enqueue()
    ghost = began_and_vanished(app.store, Q, worker="ghost", lease_seconds=0.05)
    assert ghost.id == job_id
    time.sleep(0.1)
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED and job.attempts == 2
    [lost] = app.store.attempts(job_id)
    assert lost.error_type == "deadletter.errors.WorkerLost" and lost.worker == "ghost"
    assert lost.error_class is ErrorClass.RECOVERABLE


def test_a_lease_lost_before_the_job_started_is_not_charged(app: App) -> None:
    @app.task(queue=Q)
    def work() -> None:
        return None

    job_id = work.enqueue()
    # The ghost leases the job in a batch and dies before it runs it: nothing ran.
    app.store.lease([Q], limit=1, worker="ghost", now=time.time(), lease_seconds=0.05)
    time.sleep(0.1)
    app.worker(dlq=False).reclaim_expired()
    assert app.store.attempts(job_id) == []
    job = app.store.get_job(job_id)
    assert job is not None and job.attempts == 0


def _began_at(app: App, job_id: str) -> float | None:
    with app.store.snapshot() as execute:
        row = execute("SELECT attempt_began_at FROM queue_jobs WHERE id = ?", (job_id,))
        began: float | None = row.fetchone()[0]
    return began


def test_a_begin_is_written_while_the_task_runs_and_before_it_once_a_worker_was_lost(
    app: App,
) -> None:
    """A slot starts a task at once and its begin is written in the background; a job a
    worker was lost holding, unbegun, gets its begin written before its first line, so
    that it is charged if it kills this worker too."""
    seen: dict[str, float | None] = {}

    @app.task(queue=Q)
    def work(name: str) -> None:
        job_id = current_job.get().id
        seen[f"{name} at start"] = _began_at(app, job_id)
        deadline = time.monotonic() + 10
        while (began := _began_at(app, job_id)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        seen[f"{name} later"] = began

    lost_once = work.enqueue("lost once")
    # A worker leases the job and is lost before its begin is written.
    app.store.lease([Q], limit=1, worker="ghost", now=time.time(), lease_seconds=0.05)
    time.sleep(0.1)
    app.worker(dlq=False).reclaim_expired()
    job = app.store.get_job(lost_once)
    assert job is not None and (job.attempts, job.worker_losses) == (0, 1)
    work.enqueue("fresh")

    run(app)

    assert seen["lost once at start"] is not None
    assert seen["fresh later"] is not None and seen["lost once later"] is not None
    assert states(app, [lost_once]) == [JobState.SUCCEEDED]


def test_job_that_keeps_losing_its_worker_is_dead_lettered(app: App) -> None:
    @app.task(queue=Q)
    def poison() -> None:
        return None

    job_id = poison.enqueue()
    worker = app.worker(dlq=False)
    lose_workers(app.store, Q, worker, 4)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED
    assert [a.error_type for a in app.store.attempts(job_id)] == [
        "deadletter.errors.WorkerLost"
    ] * 4


def test_heartbeat_keeps_a_long_job_leased(store_url: str) -> None:
    app = make_app(store_url, lease_seconds=0.6)

    @app.task(queue=Q)
    def slow() -> None:
        time.sleep(1.5)

    job_id = slow.enqueue()
    run(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED and job.attempts == 1
    assert app.store.attempts(job_id) == []
    app.close()


def test_graceful_stop_releases_unfinished_jobs(store_url: str) -> None:
    app = make_app(store_url, grace_seconds=0.2)
    started = threading.Event()

    @app.task(queue=Q)
    def long() -> None:
        started.set()
        time.sleep(3)

    job_id = long.enqueue()
    worker = app.worker(dlq=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert started.wait(5)
    worker.stop()
    thread.join(5)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.QUEUED and job.attempts == 0
    app.close()


def test_a_stop_gives_back_the_jobs_waiting_for_a_slot_at_once(store_url: str) -> None:
    app = make_app(store_url, grace_seconds=10, concurrency=1)
    started, release = threading.Event(), threading.Event()

    @app.task(queue=Q)
    def step(n: int) -> None:
        started.set()
        release.wait(10)

    first, *waiting = [step.enqueue(n) for n in range(5)]
    worker = app.worker(dlq=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert started.wait(5)
    worker.stop()
    # The running job has its grace period; the four that never began are back already.
    deadline = time.monotonic() + 5
    while states(app, waiting) != [JobState.QUEUED] * 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert states(app, waiting) == [JobState.QUEUED] * 4
    assert states(app, [first]) == [JobState.RUNNING]
    release.set()
    thread.join(5)
    assert states(app, [first]) == [JobState.SUCCEEDED]
    assert all(app.store.attempts(job_id) == [] for job_id in waiting)
    app.close()


def test_graceful_stop_lets_quick_jobs_finish(store_url: str) -> None:
    app = make_app(store_url, grace_seconds=5)
    started = threading.Event()

    @app.task(queue=Q)
    def short() -> None:
        started.set()
        time.sleep(0.3)

    job_id = short.enqueue()
    worker = app.worker(dlq=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert started.wait(5)
    worker.stop()
    thread.join(5)
    assert states(app, [job_id]) == [JobState.SUCCEEDED]
    app.close()


def test_a_running_job_whose_lease_is_lost_is_told_and_an_async_one_cancelled(
    store_url: str,
) -> None:
    app = make_app(store_url, lease_seconds=0.3)
    seen: dict[str, bool] = {}

    @app.task(queue=Q)
    def plain() -> None:
        job = current_job.get()
        if job.attempt == 1 and "plain" not in seen:
            take_over(app, job)
            deadline = time.monotonic() + 3
            while not job.lease_lost and time.monotonic() < deadline:
                time.sleep(0.01)
            seen["plain"] = job.lease_lost

    @app.task(queue=Q)
    async def waits() -> None:
        job = current_job.get()
        if "waits" in seen:
            return
        seen["waits"] = False
        take_over(app, job)
        try:
            await asyncio.sleep(3)
        except asyncio.CancelledError:
            seen["waits"] = True
            raise

    plain.enqueue()
    waits.enqueue()
    worker = app.worker(dlq=False)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    thread.join(20)
    app.close()
    assert seen == {"plain": True, "waits": True}


def test_a_job_leased_again_while_its_older_run_goes_on_is_kept_in_hand(store_url: str) -> None:
    """Its lease given back mid-run, the same worker leases the job again: the older run
    is told, and its end does not drop the newer lease, which is extended until that run
    ends (not left to expire and be charged as a lost worker's)."""
    app = make_app(store_url, lease_seconds=0.3)
    runs: list[LeasedJob] = []
    again = threading.Event()

    @app.task(queue=Q)
    def twice() -> None:
        job = current_job.get()
        runs.append(job)
        if len(runs) == 1:
            take_over(app, job)
            assert again.wait(10)
        else:
            again.set()
            time.sleep(2)  # past the lease, and past a reclaim of expired ones

    job_id = twice.enqueue()
    run(app)

    assert len(runs) == 2
    assert runs[0].lease_lost and not runs[1].lease_lost
    assert states(app, [job_id]) == [JobState.SUCCEEDED]
    assert app.store.attempts(job_id) == []
    app.close()


def take_over(app: App, job: LeasedJob) -> None:
    """Another worker's lease on `job`, as if its own had expired."""
    app.store.release([job.lease], now=time.time())
    app.store.lease([Q], limit=1, worker="thief", now=time.time(), lease_seconds=0.5)


def test_a_task_paces_its_retries_with_its_own_backoff_not_its_queues(app: App) -> None:
    # The queue retries at once (backoff_base 0, with jitter); these tasks wait. Each
    # stops its worker as it fails, so that the retry it was given can be read.
    @app.task(queue=Q, retry_backoff=5.0, retry_jitter=False)
    def patient() -> None:
        worker.stop()
        raise TimeoutError("upstream slow")

    @app.task(queue=Q, retry_backoff=100.0, retry_backoff_max=7.0, retry_jitter=False)
    def capped() -> None:
        worker.stop()
        raise TimeoutError("upstream slow")

    @app.task(queue=Q)
    def hasty() -> None:
        worker.stop()
        raise TimeoutError("upstream slow")

    waits = {}
    for task in (patient, capped, hasty):
        job_id = task.enqueue()
        worker = app.worker(dlq=False)
        worker.run()
        job = app.store.get_job(job_id)
        [attempt] = app.store.attempts(job_id)
        assert job is not None and job.status is JobState.RETRYING
        waits[task.name] = round(job.run_at - attempt.ended_at, 3)
    assert waits == {patient.name: 5.0, capped.name: 7.0, hasty.name: 0.0}
