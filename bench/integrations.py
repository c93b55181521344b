"""What capture adds to a task of Celery, RQ and Dramatiq: on a failing task (it writes
the failure to deadletter's database) and on a succeeding one (it should add nothing).

    .venv/bin/python bench/integrations.py [--runs 300]

Each host runs the same task with and without capture, through its own execution path
in this process: Celery's tracer (`Task.apply`, which sends the same signals a worker
does), RQ's `SimpleWorker` on the Redis at 127.0.0.1:6379 (its whole `execute_job`,
exception handlers included), Dramatiq's `Worker` on a `StubBroker` (from the first
middleware's `before_process_message` to the last `after_ack`/`after_nack`). The
failing task fails at once and is not retried, so every run is one give-up: one
transaction on a SQLite database (synchronous=FULL: one fsync) in a temporary folder.
Prints a Markdown table of medians and 99th percentiles per task, in microseconds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
from celery import Celery
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.integrations import celery as celery_capture
from deadletter.integrations import dramatiq as dramatiq_capture
from deadletter.integrations import rq as rq_capture

REDIS_URL = "redis://127.0.0.1:6379/0"
Timings = list[float]


def work(fail: bool) -> None:
    if fail:
        raise ValueError("invalid input: the bench task fails")


def make_app(folder: Path) -> App:
    url = f"sqlite:///{folder / 'deadletter.db'}"
    app = App(settings_from_mapping({"database_url": url, "spool_dir": str(folder / "spool")}))
    app.store.migrate()
    return app


# -- Celery ------------------------------------------------------------------------------


def celery_runs(app: App | None, fail: bool, runs: int) -> Timings:
    celery_app = Celery(f"bench-{uuid.uuid4().hex[:6]}", broker="memory://")
    task = celery_app.task(name="bench.work", max_retries=0)(work)
    if app is not None:
        celery_capture.capture(celery_app, app)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        task.apply(args=(fail,))
        times.append(time.perf_counter() - started)
    return times


# -- RQ -----------------------------------------------------------------------------------


class TimedWorker(SimpleWorker):
    """Times RQ's whole handling of each job: perform, then success or failure paths."""

    times: Timings

    def execute_job(self, job: Job, queue: Queue) -> None:
        started = time.perf_counter()
        super().execute_job(job, queue)
        self.times.append(time.perf_counter() - started)


def rq_runs(app: App | None, fail: bool, runs: int) -> Timings:
    connection = Redis.from_url(REDIS_URL)
    queue = Queue(f"bench-{uuid.uuid4().hex[:8]}", connection=connection)
    for _ in range(runs):
        # A builtin: RQ imports a job's function by name, and this script is __main__.
        queue.enqueue("builtins.int", "not a number" if fail else "1")
    worker = TimedWorker([queue], connection=connection)
    worker.times = []
    if app is not None:
        rq_capture.capture(worker, app)
    worker.work(burst=True)
    queue.delete(delete_jobs=True)
    for registry in (queue.failed_job_registry, queue.finished_job_registry):
        for job_id in registry.get_job_ids():
            Job.fetch(job_id, connection=connection).delete()
    connection.close()
    return worker.times


# -- Dramatiq -----------------------------------------------------------------------------


class Timer(Middleware):
    """First in the list: its before hook runs first, its after hooks last."""

    def __init__(self) -> None:
        self.times: Timings = []
        self.started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.started[message.message_id] = time.perf_counter()

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self.times.append(time.perf_counter() - self.started.pop(message.message_id))

    after_nack = after_ack


def dramatiq_runs(app: App | None, fail: bool, runs: int) -> Timings:
    broker = StubBroker()
    timer = Timer()
    broker.middleware.insert(0, timer)
    if app is not None:
        broker.add_middleware(dramatiq_capture.Capture(app))
    actor = dramatiq.actor(broker=broker, actor_name="bench.work", max_retries=0)(work)
    for _ in range(runs):
        actor.send(fail)
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    broker.join(actor.queue_name, fail_fast=False)
    worker.join()
    worker.stop()
    broker.close()
    return timer.times


# -- the table -----------------------------------------------------------------------------

HOSTS: dict[str, Callable[[App | None, bool, int], Timings]] = {
    "Celery 5 (Task.apply)": celery_runs,
    "RQ (SimpleWorker.execute_job)": rq_runs,
    "Dramatiq (Worker, StubBroker)": dramatiq_runs,
}


def percentiles(times: Timings) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1e6, ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    runs = parser.parse_args().runs
    # The hosts log every failure with its traceback; that output is not what is measured.
    logging.disable(logging.CRITICAL)
    print("| host | task | without capture: median / p99 | with capture | added (median) |")
    print("|---|---|---|---|---|")
    for host, measure in HOSTS.items():
        for fail in (True, False):
            with tempfile.TemporaryDirectory() as folder:
                app = make_app(Path(folder))
                measure(None, fail, 20)  # warm up imports and connections
                without = percentiles(measure(None, fail, runs))
                measure(app, fail, 20)
                with_capture = percentiles(measure(app, fail, runs))
                app.close()
            print(
                f"| {host} | {'failing' if fail else 'succeeding'}"
                f" | {without[0]:,.0f} / {without[1]:,.0f} µs"
                f" | {with_capture[0]:,.0f} / {with_capture[1]:,.0f} µs"
                f" | {with_capture[0] - without[0]:+,.0f} µs |"
            )


if __name__ == "__main__":
    main()
