"""Throughput of the queue on each backend, beside raw inserts into the same database.

    .venv/bin/python bench/run.py [--backends sqlite,postgres] [--scale 1.0] [--enqueue-only]

Prints a Markdown table; `docs/benchmarks.md` records one run with its machine.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import multiprocessing
import os
import platform
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.tasks import Task

PG_ADMIN = os.environ.get("DEADLETTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
QUEUE = "bench"
CONCURRENCY = 2
# Producer threads of the concurrent enqueue rows (group commit, issue 13).
THREADS = 8
# A job that does some work: what a begin mark per start costs beside it.
SHORT_JOB = 0.001


@dataclass(frozen=True)
class Row:
    backend: str
    what: str
    count: int
    seconds: float
    reference: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def markdown(self) -> str:
        ratio = self.rate / self.reference
        return (
            f"| {self.backend} | {self.what} | {self.count:,} | {self.rate:,.0f}/s"
            f" | {self.reference:,.0f}/s | {ratio:.2f} |"
        )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def p99(ordered: Sequence[float]) -> float:
    """The 99th percentile of sorted values (the highest of a hundred or fewer)."""
    return ordered[max(int(len(ordered) * 0.99) - 1, 0)]


def timed_processes(count: int, prepare: Callable[[], Callable[[], object]]) -> float:
    """Seconds for `count` forked processes to run what `prepare` returns, from the moment
    all of them are ready: each calls `prepare` first (opening its own connections, so
    fork before the caller holds any), untimed. A process that fails is an error."""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(count + 1, timeout=120)

    def child() -> None:
        run = prepare()
        ready.wait()
        run()

    processes = [context.Process(target=child) for _ in range(count)]
    for process in processes:
        process.start()
    ready.wait()
    started = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    if failed := [p.exitcode for p in processes if p.exitcode != 0]:
        raise RuntimeError(f"worker processes exited with {failed}")
    return seconds


# -- databases -----------------------------------------------------------------


@functools.cache
def _scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="deadletter-bench-"))
    owner = os.getpid()

    def remove() -> None:
        # Forked workers inherit the hook; only the process that made the folder may act.
        if os.getpid() == owner:
            shutil.rmtree(root, ignore_errors=True)

    atexit.register(remove)
    return root


def scratch_folder() -> Path:
    """A new folder for one measurement's files, removed when the run ends.

    Not between rows: on ext4 without a journal (this machine's root file system), a
    file created in the seconds after thousands were deleted costs 0.2-0.7 ms of kernel
    CPU instead of ~25 us (ext4 skips each inode freed in the last 60 s, 360 s while its
    inode table block is unwritten: `recently_deleted` in the kernel's ialloc.c), so a row
    of forensic writes timed after another row's cleanup measured that cleanup
    (docs/benchmarks.md, "Files deleted between rows")."""
    return Path(tempfile.mkdtemp(dir=_scratch_root()))


@contextmanager
def sqlite_url() -> Iterator[str]:
    """A new database file, private from the start as the store makes its files: the raw
    reference opens it first, and the store would otherwise tighten it and say so."""
    database = scratch_folder() / "bench.db"
    database.touch(mode=0o600)
    yield f"sqlite:///{database}"


@contextmanager
def postgres_url() -> Iterator[str]:
    name = f"dl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def raw_sqlite(url: str, table: str | None = None) -> sqlite3.Connection:
    """A connection writing as the store writes (WAL, synchronous FULL), and waiting for
    the write lock as it does; with `table`, that bare table made."""
    conn = sqlite3.connect(
        url.removeprefix("sqlite:///"), isolation_level=None, timeout=60, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    if table:
        conn.execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, payload TEXT)")
    return conn


def raw_insert_rate(url: str, count: int) -> float:
    """Rows/s of a plain executemany INSERT in one transaction: the floor to compare with."""
    rows = [(uuid.uuid4().hex, '{"args":[1],"kwargs":{}}') for _ in range(count)]
    if url.startswith("sqlite"):
        conn = raw_sqlite(url, "raw")

        def insert() -> None:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO raw VALUES (?, ?)", rows)
            conn.execute("COMMIT")

        seconds = timed(insert)
        conn.close()
        return count / seconds
    with psycopg.connect(url) as pg:
        pg.execute("CREATE TABLE raw (id TEXT PRIMARY KEY, payload JSONB)")
        pg.commit()

        def pg_insert() -> None:
            with pg.cursor() as cur:
                cur.executemany("INSERT INTO raw VALUES (%s, %s)", rows)
            pg.commit()

        return count / timed(pg_insert)


def raw_single_rate(url: str, count: int, threads: int = 1) -> float:
    """Rows/s of plain INSERTs one per durable commit (what one enqueue call must do),
    through the driver's own connections, one per thread: the ceiling of single-job
    enqueues from `threads` threads, without group commit."""
    table = f"raw_single_{threads}"
    rows = [(uuid.uuid4().hex, '{"args":[1],"kwargs":{}}') for _ in range(count)]
    connections: list[sqlite3.Connection | psycopg.Connection[Any]]
    if url.startswith("sqlite"):
        raw_sqlite(url, table).close()
        connections = [raw_sqlite(url) for _ in range(threads)]
        insert = f"INSERT INTO {table} VALUES (?, ?)"
    else:
        connections = [psycopg.connect(url, autocommit=True) for _ in range(threads)]
        connections[0].execute(f"CREATE TABLE {table} (id TEXT PRIMARY KEY, payload JSONB)")
        insert = f"INSERT INTO {table} VALUES (%s, %s)"

    def part(n: int) -> Callable[[], object]:
        conn = connections[n]
        return lambda: [conn.execute(insert, row) for row in rows[n::threads]]

    seconds = timed_threads([part(n) for n in range(threads)])
    for conn in connections:
        conn.close()
    return count / seconds


def timed_threads(
    parts: Sequence[Callable[[], object]], warm: Callable[[], object] = lambda: None
) -> float:
    """Seconds for one thread per part to run its part, each once it has run `warm` (a
    first call opens its connections) and all are ready; an error in a part is raised."""
    ready = threading.Barrier(len(parts) + 1)

    def run(part: Callable[[], object]) -> None:
        warm()
        ready.wait()
        part()

    with ThreadPoolExecutor(len(parts)) as pool:
        futures = [pool.submit(run, part) for part in parts]
        ready.wait()
        seconds = timed(lambda: [future.result() for future in futures])
    return seconds


def enqueue_rows(
    backend: str, url: str, task: Task[[int], None], singles: int, reference: float
) -> list[Row]:
    """One job per `task.enqueue` call from 1 and from THREADS threads, each beside raw
    single-row durable INSERTs from as many threads (whose own reference is `reference`,
    the batch insert); THREADS threads enqueue twice as many jobs. Each thread enqueues
    one job more before the clock starts: ENQUEUED_UNTIMED jobs in all."""
    rows = []
    for threads in (1, THREADS):
        count = singles * min(threads, 2)
        raw = raw_single_rate(url, count, threads)
        shares = range(0, count, count // threads)

        def enqueue(first: int, each: int = count // threads) -> None:
            for n in range(first, first + each):
                task.enqueue(n)

        seconds = timed_threads(
            [functools.partial(enqueue, first) for first in shares],
            warm=lambda: task.enqueue(-1),
        )
        what = f"{threads} thread{'s' if threads > 1 else ''}"
        rows += [
            Row(
                backend,
                f"raw INSERT, one durable commit each, {what} (reference of the next row)",
                count,
                count / raw,
                reference,
            ),
            Row(backend, f"enqueue, one job per call, {what}", count, seconds, raw),
        ]
    return rows


ENQUEUED_UNTIMED = 1 + THREADS


# -- the measurements -----------------------------------------------------------


def make_app(url: str, folder: Path | None = None) -> App:
    """With `folder`, the DLQ handler's forensics and log go there: for workers that run
    it (`measure`'s last row, bench/scale.py's failure path)."""
    files: dict[str, Any] = {}
    if folder is not None:
        files = {"blob_url": str(folder / "blobs"), "dlq": {"log_file": str(folder / "dlq.log")}}
    settings = settings_from_mapping(
        {
            "database_url": url,
            "worker": {"concurrency": CONCURRENCY, "batch_size": 400, "poll_interval": 0.01},
            "queues": {QUEUE: {"backoff_base": 0.0, "max_retries": 3}},
            **files,
        }
    )
    app = App(settings)
    app.store.migrate()

    @app.task(name="noop", queue=QUEUE)
    def noop(n: int) -> None:
        return None

    @app.task(name="short", queue=QUEUE)
    def short(n: int) -> None:
        time.sleep(SHORT_JOB)

    @app.task(name="fail", queue=QUEUE)
    def fail(n: int) -> None:
        raise ConnectionResetError(f"upstream reset the connection for item {n}")

    return app


def drain(app: App, *, succeeded: int = 0, dead_lettered: int = 0, handled: int = 0) -> None:
    """Run one burst worker until the queue is empty, with the DLQ handler when letters
    are to be `handled`; check that it did what is timed."""
    stats = app.worker(dlq=handled > 0).run(burst=True)
    done = (stats.succeeded, stats.dead_lettered, stats.letters_handled)
    wanted = (succeeded, dead_lettered, handled)
    if done != wanted:
        raise RuntimeError(f"(succeeded, dead-lettered, handled): expected {wanted}, got {done}")


def measure(backend: str, url: str, scale: float, *, enqueue_only: bool = False) -> list[Row]:
    """The core queue's rates, without the DLQ handler but in the last row: the whole
    failure path, each dead letter handled too (forensics, classification, routing);
    bench/dlq.py measures the handler alone."""
    return _measure(backend, url, scale, scratch_folder(), enqueue_only=enqueue_only)


def _measure(
    backend: str, url: str, scale: float, folder: Path, *, enqueue_only: bool
) -> list[Row]:
    n = int(20_000 * scale)
    reference = raw_insert_rate(url, n)
    app = make_app(url, folder)
    noop, fail = app.tasks["noop"], app.tasks["fail"]
    singles = int(2_000 * scale)
    batches = max(n // 10_000, 1)
    rows = enqueue_rows(backend, url, noop, singles, reference)
    if enqueue_only:
        app.close()
        return rows
    rows.append(
        Row(
            backend,
            "enqueue, batches of 10,000",
            batches * 10_000,
            timed(
                lambda: [
                    app.enqueue_many(noop.spec(i) for i in range(10_000)) for _ in range(batches)
                ]
            ),
            reference,
        )
    )
    total = sum(row.count for row in rows if row.what.startswith("enqueue")) + ENQUEUED_UNTIMED
    rows.append(
        Row(
            backend,
            "no-op jobs processed",
            total,
            timed(lambda: drain(app, succeeded=total)),
            reference,
        )
    )
    shorts = int(4_000 * scale)
    app.enqueue_many(app.tasks["short"].spec(i) for i in range(shorts))
    rows.append(
        Row(
            backend,
            f"jobs of {SHORT_JOB * 1000:g} ms processed (reference: slots x 1/duration)",
            shorts,
            timed(lambda: drain(app, succeeded=shorts)),
            CONCURRENCY / SHORT_JOB,
        )
    )
    dead = int(3_000 * scale)
    app.enqueue_many(fail.spec(i) for i in range(dead))
    rows.append(
        Row(
            backend,
            "jobs dead-lettered (4 attempts each)",
            dead,
            timed(lambda: drain(app, dead_lettered=dead)),
            reference,
        )
    )
    drain(app, handled=dead)  # the letters of the row above, untimed
    app.enqueue_many(fail.spec(i) for i in range(dead))
    rows.append(
        Row(
            backend,
            "jobs dead-lettered and handled (4 attempts each, DLQ handler on)",
            dead,
            timed(lambda: drain(app, dead_lettered=dead, handled=dead)),
            reference,
        )
    )
    app.close()
    return rows


def machine_line() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    create = file_create_seconds() * 1e6
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" a file created in the scratch folder: {create:.0f} us"
    )


def file_create_seconds(count: int = 200) -> float:
    """Seconds to create, write and close a 600-byte file in a new scratch folder.

    About 25 us on this machine's settled disk, 10-25 times that in the minutes after
    thousands of files were deleted (`scratch_folder`); a run's forensic-writing rows
    are slower by as much, so each run reports it."""
    folder = scratch_folder()
    started = time.perf_counter()
    for n in range(count):
        fd = os.open(folder / str(n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, bytes(600))
        os.close(fd)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--enqueue-only", action="store_true", help="only the one-job-per-call enqueue rows"
    )
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    results: list[Row] = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            results.extend(measure(backend, url, args.scale, enqueue_only=args.enqueue_only))
    print(machine_line())
    print("| backend | what | jobs | rate | reference, same db | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for row in results:
        print(row.markdown())


if __name__ == "__main__":
    main()
