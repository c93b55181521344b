"""Pickup: how long an idle worker takes to start a job, and what it costs while idle.

    .venv/bin/python bench/pickup.py [--backends sqlite,postgres] [--jobs 200]
        [--idle-seconds 10]

One worker process as `deadletter worker` runs it (default settings: poll_interval
0.5 s, its queue's DLQ and periodic duties on) waits on an empty queue. Jobs are
enqueued one at a time, each once the previous one has started and then a random gap
of 50-150 ms has passed, so that the worker is idle and each job meets its wait at
another moment. A job's latency is from just before its enqueue call to the first line
of its task, which appends the time to a log. Each backend is measured with
`task.enqueue(...)` and with `task.enqueue_in(conn, ...)` in a transaction of the
producer's own connection, committed at once. The idle cost is the worker process's
CPU time (all its threads) over `--idle-seconds` with nothing to do, in % of one core.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from run import machine_line, p99, postgres_url, sqlite_url

from deadletter.app import App
from deadletter.config import settings_from_mapping

QUEUE = "bench"
GAP = (0.05, 0.15)
# How long a job may take to start before the run is called broken.
GIVE_UP = 30.0


def make_app(url: str, folder: Path, log: Path) -> App:
    """The worker's settings are the defaults; only the files go to the run's folder."""
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(folder / "blobs"),
            "dlq": {"log_file": str(folder / "dlq.log")},
        }
    )
    app = App(settings)
    app.store.migrate()

    @app.task(name="started", queue=QUEUE)
    def started(n: int) -> None:
        line = f"{n} {time.time()}\n".encode()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    return app


def work(url: str, folder: Path, log: Path) -> None:
    """The worker process: until SIGTERM."""
    app = make_app(url, folder, log)
    worker = app.worker()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()
    app.close()


class StartLog:
    """The task's log, read on from where it was last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.started: dict[int, float] = {}

    def wait_for(self, n: int) -> float:
        deadline = time.monotonic() + GIVE_UP
        while n not in self.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {n} did not start within {GIVE_UP} s")
            time.sleep(0.002)
            self._read()
        return self.started[n]

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(self.offset)
            text = file.read()
        complete = text[: text.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            n, at = line.split()
            self.started[int(n)] = float(at)


def enqueuer(
    app: App, url: str, transactional: bool
) -> tuple[Callable[[int], str], Callable[[], None]]:
    """How one job is enqueued (its id back), and how to close what that opened."""
    task = app.tasks["started"]
    if not transactional:
        return task.enqueue, lambda: None
    if url.startswith("sqlite"):
        conn: sqlite3.Connection | psycopg.Connection[Any] = sqlite3.connect(
            url.removeprefix("sqlite:///")
        )
    else:
        conn = psycopg.connect(url)

    def in_transaction(n: int) -> str:
        job_id = task.enqueue_in(conn, n)
        conn.commit()
        return job_id

    return in_transaction, conn.close


@dataclass(frozen=True)
class Pickup:
    """One job's way, in seconds from just before its enqueue call."""

    called: float  # the enqueue call returned (committed)
    turn: float  # the worker's turn that leased it began (the job's started_at)
    started: float  # its task began

    @staticmethod
    def of(before: float, returned: float, turn: float, started: float) -> Pickup:
        return Pickup(returned - before, turn - before, started - before)


def pickups(app: App, url: str, log: StartLog, jobs: int, transactional: bool) -> list[Pickup]:
    enqueue, close = enqueuer(app, url, transactional)
    rng = random.Random(13)
    first = len(log.started)
    timed = []
    try:
        for n in range(first, first + jobs):
            time.sleep(rng.uniform(*GAP))
            before = time.time()
            job_id = enqueue(n)
            returned = time.time()
            timed.append((before, returned, job_id, log.wait_for(n)))
    finally:
        close()
    found = []
    for before, returned, job_id, started in timed:
        job = app.store.get_job(job_id)
        turn = job.started_at if job is not None and job.started_at is not None else started
        found.append(Pickup.of(before, returned, turn, started))
    return found


def idle_cpu(pid: int, seconds: float) -> float:
    """% of one core the process used over `seconds` (all threads, user and system)."""
    process = psutil.Process(pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100 * used / seconds


def row(backend: str, how: str, found: list[Pickup], idle: float) -> str:
    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{1000 * statistics.median(ordered):.1f} / {1000 * p99(ordered):.1f}"

    total = sorted(p.started for p in found)
    return (
        f"| {backend} | {how} | {len(found)} | {1000 * statistics.median(total):.1f} ms"
        f" | {1000 * p99(total):.1f} ms | {1000 * total[-1]:.1f} ms"
        f" | {ms([p.called for p in found])} | {ms([p.turn - p.called for p in found])}"
        f" | {ms([p.started - p.turn for p in found])} | {idle:.2f}% |"
    )


def measure(backend: str, url: str, args: argparse.Namespace) -> list[str]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "started.log"
        app = make_app(url, folder, path)
        # Fork before the worker's connections exist: it opens its own.
        app.close()
        process = multiprocessing.get_context("fork").Process(target=work, args=(url, folder, path))
        process.start()
        try:
            log = StartLog(path)
            lines = []
            for transactional in (False, True):
                found = pickups(app, url, log, args.jobs, transactional)
                time.sleep(2)  # the last job's outcome written, the worker back to waiting
                idle = idle_cpu(process.pid or 0, args.idle_seconds)
                how = "enqueue_in(conn), commit" if transactional else "enqueue"
                lines.append(row(backend, how, found, idle))
        finally:
            app.close()
            process.terminate()
            process.join(30)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.extend(measure(backend, url, args))
    print(machine_line())
    print(
        "| backend | enqueued by | jobs | p50 enqueue-to-start | p99 | max"
        " | call, ms p50 / p99 | to the worker's turn | turn to task start | idle worker CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
