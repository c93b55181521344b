"""Soak: jobs through one database at full speed with a short retention; storage must
stay bounded and throughput must hold.

    .venv/bin/python bench/soak.py --jobs 5000000 [--backends sqlite,postgres]
        [--retention 30] [--max-minutes 15]

One process: a producer thread enqueues batches of 1,000 no-op jobs, keeping at most
`--ahead` jobs waiting, and one worker (2 slots) runs them and prunes what succeeded
past `--retention` seconds (worker/prune.py, as every worker does). Every 10 seconds
it samples the jobs done, the database's size (SQLite: the file and its WAL;
PostgreSQL: pg_database_size) and, on PostgreSQL, live and dead tuples of the hot
tables. It stops after `--jobs` jobs or `--max-minutes`, whichever comes first, and
prints the samples and the throughput of the last minute against the first.
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from run import PG_ADMIN, machine_line, postgres_url, sqlite_url

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.worker.loop import Worker

QUEUE = "soak"
BATCH = 1_000
SAMPLE_SECONDS = 10.0
HOT_TABLES = ("queue_jobs", "job_attempts")


@dataclass
class Sample:
    at: float
    done: int
    size: int
    rows: int  # in queue_jobs
    tuples: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: (live, dead)


def make_app(url: str, retention: float) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "worker": {"concurrency": 2, "batch_size": 400, "poll_interval": 0.01},
            "queues": {QUEUE: {"retention_seconds": retention}},
        }
    )
    app = App(settings)
    app.store.migrate()

    @app.task(name="noop", queue=QUEUE)
    def noop(n: int) -> None:
        return None

    return app


def database_size(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with psycopg.connect(url) as pg:
        return _count(pg.execute("SELECT pg_database_size(current_database())").fetchone())


def job_rows(url: str) -> int:
    sql = "SELECT count(*) FROM queue_jobs"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return _count(conn.execute(sql).fetchone())
    with psycopg.connect(url) as pg:
        return _count(pg.execute(sql).fetchone())


def _count(row: tuple[Any, ...] | None) -> int:
    if row is None:
        raise RuntimeError("a count query returned no row")
    return int(row[0])


def dead_tuples(url: str) -> dict[str, tuple[int, int]]:
    if not url.startswith("postgres"):
        return {}
    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s)",
            (list(HOT_TABLES),),
        ).fetchall()
    return {name: (int(live), int(dead)) for name, live, dead in rows}


def produce(app: App, worker: Worker, jobs: int, ahead: int, stop: threading.Event) -> None:
    noop = app.tasks["noop"]
    sent = 0
    while sent < jobs and not stop.is_set():
        if sent - worker.stats.succeeded > ahead:
            time.sleep(0.01)
            continue
        count = min(BATCH, jobs - sent)
        app.enqueue_many(noop.spec(i) for i in range(count))
        sent += count


def soak(url: str, jobs: int, retention: float, ahead: int, max_seconds: float) -> list[Sample]:
    app = make_app(url, retention)
    worker = app.worker(dlq=False)
    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(app, worker, jobs, ahead, stop))
    running = threading.Thread(target=worker.run)
    started = time.monotonic()
    samples = [Sample(0.0, 0, database_size(url), job_rows(url), dead_tuples(url))]
    producer.start()
    running.start()
    try:
        while samples[-1].done < jobs and time.monotonic() - started < max_seconds:
            time.sleep(SAMPLE_SECONDS)
            done, at = worker.stats.succeeded, time.monotonic() - started
            samples.append(Sample(at, done, database_size(url), job_rows(url), dead_tuples(url)))
            print(describe(samples[-1]), flush=True)
    finally:
        stop.set()
        worker.stop(now=True)
        producer.join()
        running.join()
        app.close()
    return samples


def rate_over(samples: list[Sample], first: bool) -> float:
    """Jobs/s over the first (or last) minute of the samples."""
    if first:
        end = next((s for s in samples if s.at >= 60), samples[-1])
        return end.done / end.at
    last = samples[-1]
    begin = next(s for s in reversed(samples) if last.at - s.at >= 60)
    return (last.done - begin.done) / (last.at - begin.at)


def describe(sample: Sample) -> str:
    tuples = " ".join(f"{t}={live:,}/{dead:,}" for t, (live, dead) in sample.tuples.items())
    size = f"{sample.size / 2**20:,.1f} MiB"
    return f"| {sample.at:,.0f} s | {sample.done:,} | {sample.rows:,} | {size} | {tuples} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--retention", type=float, default=30.0)
    parser.add_argument("--ahead", type=int, default=20_000)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    print(machine_line())
    print(f"PostgreSQL at {PG_ADMIN}")
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            print(f"\n{backend}, retention {args.retention:g} s")
            print("| time | jobs done | rows in queue_jobs | database | hot tables live/dead |")
            print("|---:|---:|---:|---:|---|")
            samples = soak(url, args.jobs, args.retention, args.ahead, args.max_minutes * 60)
        first, last = rate_over(samples, True), rate_over(samples, False)
        print(
            f"{backend}: {samples[-1].done:,} jobs in {samples[-1].at:,.0f} s;"
            f" first minute {first:,.0f}/s, last minute {last:,.0f}/s ({last / first:.0%});"
            f" largest database {max(s.size for s in samples) / 2**20:,.1f} MiB"
        )


if __name__ == "__main__":
    main()
