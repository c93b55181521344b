"""An app with failures to operate on: real jobs failed by a real worker, or many
failures recorded through the store contract when a test needs thousands of them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.dlq import wording
from deadletter.errors import InvalidInput
from deadletter.forensics import document as forensic
from deadletter.model import ErrorClass, FailureRecord, JobState, Route
from deadletter.worker.loop import Worker
from deadletter.worker.slots import current_job

Q = "charts"
OTHER_Q = "reports"


class HTTPError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


@dataclass
class Downstream:
    """What the tasks depend on: keys that are healthy now, and how often each ran."""

    healthy: set[str] = field(default_factory=set)
    runs: dict[str, int] = field(default_factory=dict)

    def call(self, key: str) -> None:
        self.runs[key] = self.runs.get(key, 0) + 1
        if key not in self.healthy:
            raise TimeoutError(f"Timeout fetching {key} after 30s")


def make_app(url: str, tmp_path: Path, downstream: Downstream) -> App:
    """Queues with one retry (two attempts), no backoff, so that jobs fail fast."""
    fast = {"backoff_base": 0.0, "max_retries": 1}
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(tmp_path / "blobs"),
            "worker": {"poll_interval": 0.02},
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "queues": {Q: fast, OTHER_Q: fast},
        }
    )
    app = App(settings)

    @app.task(queue=Q, name="charts.fetch")
    def fetch(key: str) -> None:
        downstream.call(key)

    @app.task(queue=OTHER_Q, name="reports.build")
    def build(kind: str, detail: str = "") -> None:
        downstream.runs[kind] = downstream.runs.get(kind, 0) + 1
        if kind == "invalid":
            raise InvalidInput(f"report {detail} has no date range")
        if kind == "server_error":
            raise HTTPError(500, f"Internal Server Error at node {detail}")
        if kind == "mystery":
            raise KeyError(f"series_{detail}")

    return app


def run_worker(app: App) -> None:
    app.worker().run(burst=True)


class Stopped(Exception):
    """What a sync task raises when it sees it was cancelled."""


def polling(app: App, started: threading.Semaphore, told: dict[str, bool]) -> None:
    """Register `charts.render`: a sync task that polls `current_job()` until it is told
    to stop (30 s at most), then returns or raises as its argument says."""

    @app.task(queue=Q, name="charts.render")
    def render(end: str) -> None:
        job = current_job.get()
        started.release()
        deadline = time.monotonic() + 30
        while not job.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.01)
        told[end] = job.cancel_requested
        if end == "raise":
            raise Stopped("told to stop")


def in_thread(worker: Worker) -> threading.Thread:
    """A burst run of `worker`, started on a thread of its own."""
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    return thread


def fail(app: App, task: str, *args: str) -> str:
    """Enqueue one job and run the worker until it has failed through the DLQ."""
    job_id = app.enqueue(app.tasks[task].spec(*args))
    run_worker(app)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED, job
    return job_id


def park(app: App, queue: str) -> list[Path]:
    """Park every letter waiting on `queue`'s DLQ for a fault of its own (a folder where
    its forensic record goes), by real passes of the handler; the folders, to remove
    when the fault is to be fixed."""
    blockers = []
    for letter in app.store.list_jobs(queue=f"{queue}-dlq", state=JobState.QUEUED):
        failed_at = float(letter.payload["attempts"][-1]["ended_at"])
        blocker = Path(app.settings.blob_url) / forensic.key(queue, failed_at, letter.id)
        blocker.mkdir(parents=True)
        blockers.append(blocker)
    app.worker(queues=[queue], dlq_only=True).run(burst=True)
    return blockers


def table(app: App, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with app.store.snapshot() as execute:
        return [tuple(row) for row in execute(sql, params).fetchall()]


def recovery_status(app: App, job_id: str) -> str | None:
    found = table(app, "SELECT status FROM dlq_recovery_queue WHERE job_id = ?", job_id)
    return found[0][0] if found else None


def record_failures(
    app: App, count: int, *, ties: int = 3, start: float = 1_000.0, spacing: float = 1.0
) -> None:
    """`count` failures without jobs, `ties` at a time sharing one failed_at, `spacing`
    seconds apart; every third of another queue, class and group."""
    records = [failure_record(i, start + (i // ties) * spacing) for i in range(count)]
    records = [replace(r, alert=wording.alert(r, summary="summary", poison=False)) for r in records]
    app.store.record_failures(records, now=time.time(), alert_window=900)


def failure_record(i: int, failed_at: float) -> FailureRecord:
    """The `i`th failure of `record_failures`: routed to review, with no other row."""
    odd = i % 3 == 0
    return FailureRecord(
        dead_letter_id=f"dl-{i:06d}",
        job_id=f"job-{i:06d}",
        queue=OTHER_Q if odd else Q,
        task="charts.fetch",
        error_class=ErrorClass.SYSTEM_ERROR if odd else ErrorClass.RECOVERABLE,
        rule="test",
        fingerprint="fp-odd" if odd else "fp-even",
        error_type="HTTPError" if odd else "TimeoutError",
        error_message=f'Timeout fetching item_{i} (50% done), "quoted"\nnext line',
        http_status=500 if odd else None,
        retry_count=1,
        reason="retries exhausted after 2 attempts",
        labels={"site": f"building-{i % 5}"},
        forensics_key=None,
        created_at=failed_at - 10,
        failed_at=failed_at,
        route=Route.REVIEW,
        review=True,
    )
