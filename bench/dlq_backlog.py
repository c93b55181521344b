"""How long a dead letter waits to be handled while a large backlog is queued.

    .venv/bin/python bench/dlq_backlog.py [--backends sqlite,postgres] [--jobs 10000]
        [--workers 3] [--fail-every 10] [--job-ms 5]

`--jobs` jobs are queued at once; every `--fail-every`-th one fails with no retry
left, so it is dead-lettered while the rest of the backlog still waits. The other
jobs sleep `--job-ms`. `--workers` burst worker processes (each with its DLQ handler,
as `deadletter worker` runs) drain everything. For each dead letter, the time from
dead-lettering (the letter's `created_at`) to handled (its `completed_at`) gives the
median, p99 and max. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from run import machine_line, p99, postgres_url, scratch_folder, sqlite_url, timed_processes

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.store.base import DEAD_LETTER_TASK

QUEUE = "bench"
LATENCIES = "SELECT completed_at - created_at FROM queue_jobs WHERE task = '{task}'"


def make_app(url: str, blobs: Path, fail_every: int, job_ms: float) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(blobs),
            "worker": {"concurrency": 2, "poll_interval": 0.05},
            "dlq": {"log_file": str(blobs.parent / "dlq.log")},
            "queues": {QUEUE: {"max_retries": 0}},
        }
    )
    app = App(settings)

    @app.task(name="job", queue=QUEUE)
    def job(n: int) -> None:
        if n % fail_every == 0:
            raise TimeoutError(f"Timeout fetching data for item {n} after 30s")
        time.sleep(job_ms / 1000)

    return app


def work(url: str, blobs: Path, fail_every: int, job_ms: float) -> Callable[[], None]:
    """One worker process: the queue and its DLQ, until nothing is left."""
    app = make_app(url, blobs, fail_every, job_ms)
    worker = app.worker()

    def run() -> None:
        worker.run(burst=True)
        app.close()

    return run


def latencies(url: str) -> list[float]:
    sql = LATENCIES.format(task=DEAD_LETTER_TASK)
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return sorted(r[0] for r in conn.execute(sql))
    with psycopg.connect(url) as pg:
        return sorted(r[0] for r in pg.execute(sql))


def measure(backend: str, url: str, args: argparse.Namespace) -> str:
    blobs = scratch_folder() / "blobs"
    app = make_app(url, blobs, args.fail_every, args.job_ms)
    app.store.migrate()
    app.enqueue_many(app.tasks["job"].spec(n) for n in range(args.jobs))
    app.close()
    seconds = timed_processes(args.workers, lambda: work(url, blobs, args.fail_every, args.job_ms))
    waits = latencies(url)
    return (
        f"| {backend} | {args.jobs:,} | {len(waits):,} | {args.workers} | {seconds:.1f} s"
        f" | {statistics.median(waits):.2f} s | {p99(waits):.2f} s | {waits[-1]:.2f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--fail-every", type=int, default=10)
    parser.add_argument("--job-ms", type=float, default=5.0)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.append(measure(backend, url, args))
    print(machine_line())
    print("| backend | jobs | dead letters | workers | all done in | median wait | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
