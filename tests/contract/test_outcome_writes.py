"""Outcomes written in the background (worker/writes.py): on PostgreSQL a batch's write
does not hold up the next jobs, but for a dead letter, which is leased before them.
SQLite writes inline, one writer at a time, so these are PostgreSQL's alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import InvalidInput
from deadletter.model import JobState
from deadletter.store.base import dead_letter_id
from deadletter.worker.slots import current_job
from tests.contract.test_worker import Q, make_app

WAIT = 20.0


def test_a_slow_outcome_write_does_not_hold_up_the_next_job(postgres_url: str) -> None:
    app = make_app(postgres_url)
    blocker = psycopg.connect(postgres_url)
    locked = threading.Event()
    second_ran = threading.Event()

    @app.task(queue=Q)
    def hold_own_row() -> None:
        # Another connection locks this job's row until the test lets go: the job's
        # outcome write waits on that lock.
        blocker.execute("SELECT 1 FROM queue_jobs WHERE id = %s FOR UPDATE", [current_job.get().id])
        locked.set()

    @app.task(queue=Q)
    def second() -> None:
        second_ran.set()

    first_id = app.enqueue(hold_own_row.spec())
    worker = app.worker(dlq=False)
    running = threading.Thread(target=worker.run)
    running.start()
    try:
        assert locked.wait(WAIT)
        # The worker finds the queue empty a few times while the write is held up.
        time.sleep(0.2)
        second_id = app.enqueue(second.spec())
        assert second_ran.wait(WAIT), "the second job waited for the first one's write"
        assert status(app, first_id) is JobState.RUNNING  # written, not yet committed
        blocker.commit()
        worker.stop()
        running.join(WAIT)
        assert not running.is_alive()
        assert [status(app, first_id), status(app, second_id)] == [JobState.SUCCEEDED] * 2
        assert worker.stats.succeeded == 2
    finally:
        blocker.close()
        worker.stop()
        running.join(WAIT)
        app.close()


def status(app: App, job_id: str) -> JobState | None:
    job = app.store.get_job(job_id)
    return job.status if job is not None else None


def test_a_letter_written_in_the_background_is_in_the_next_lease(
    postgres_url: str, tmp_path: Path
) -> None:
    """The worker waits for a batch that writes a dead letter before it leases again,
    so the letter goes ahead of the backlog: while that write is held up, no more of the
    backlog is leased and run."""
    batch = 4
    settings = settings_from_mapping(
        {
            "database_url": postgres_url,
            "blob_url": str(tmp_path / "blobs"),
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "worker": {"poll_interval": 0.02, "batch_size": batch, "concurrency": 1},
        }
    )
    app = App(settings)
    blocker = psycopg.connect(postgres_url)
    ran: list[float] = []

    @app.task(queue=Q)
    def validate() -> None:
        blocker.execute("SELECT 1 FROM queue_jobs WHERE id = %s FOR UPDATE", [current_job.get().id])
        raise InvalidInput("date range end before start")

    @app.task(queue=Q)
    def noop(n: int) -> None:
        ran.append(time.time())
        if len(ran) == batch - 1:  # the first lease's backlog jobs have run
            threading.Timer(0.5, blocker.commit).start()

    failing = validate.enqueue()
    app.enqueue_many(noop.spec(n) for n in range(20))
    try:
        app.worker().run(burst=True)
        letter = app.store.get_job(dead_letter_id(failing, 1))
        assert letter is not None and letter.started_at is not None
        before_letter = [at for at in ran if at < letter.started_at]
        assert len(before_letter) <= batch - 1
    finally:
        blocker.close()
        app.close()
