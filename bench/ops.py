"""Operators' reads at scale: `stats` and the first page of `failures` with a million
failures in the database, on each backend, beside a primary-key lookup on the same one.

    .venv/bin/python bench/ops.py --rows 1000000 [--backends sqlite,postgres] [--calls 200]

A fresh database per backend is migrated, then filled by set-based SQL (no Python loop
per row): `rows` failed jobs spread over 60 days on 8 queues, each with its failure
(4 classes, 2,000 groups), its dead letter (a succeeded job on the DLQ), and for the
RECOVERABLE ones a recovery row (pending, requeued, recovered or abandoned; the job's
status follows: queued when requeued, succeeded when recovered). Each read is then
called `calls` times through the store and the operations layer, as the API calls
them; the median and p99 sit beside those of `store.get_job` on the same database.
Prints a Markdown table; `docs/benchmarks.md` records one run with its machine.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import psycopg
from run import machine_line, p99, postgres_url, sqlite_url

from deadletter.ops.failures import list_failures
from deadletter.ops.filters import FailureFilter
from deadletter.store import open_store
from deadletter.store.base import Store

DAYS = 60
WARMUP = 5

# What differs between the two dialects in the fill: the row source, hex formatting
# and the cast that PostgreSQL needs into a JSONB column.
SERIES = {
    "sqlite": "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {n})"
    " SELECT i FROM s",
    "postgres": "SELECT i FROM generate_series(0, {n} - 1) AS s(i)",
}
HEX16 = {
    "sqlite": "printf('%016x', {})",
    "postgres": "lpad(to_hex(({})::bigint), 16, '0')",
}
JSON = {"sqlite": "{}", "postgres": "CAST({} AS jsonb)"}

# One row per failure, every column derived from its number i (0 is the oldest) and a
# hash h of it, whose digits pick the attributes independently of each other. Queues
# and classes are skewed as real ones are; 2,000 groups, each of one class.
FILL_COLUMNS = """
    i,
    'job_' || {hex_time} || {hex_i} AS job_id,
    {now} - ({n} - i) * {step} AS failed_at,
    1 + h / 20000 % 4 AS attempts,
    CASE WHEN h / 20 % 100 < 30 THEN 'charts' WHEN h / 20 % 100 < 50 THEN 'reports'
         WHEN h / 20 % 100 < 65 THEN 'emails' WHEN h / 20 % 100 < 77 THEN 'webhooks'
         WHEN h / 20 % 100 < 87 THEN 'sync' WHEN h / 20 % 100 < 94 THEN 'thumbnails'
         WHEN h / 20 % 100 < 98 THEN 'billing' ELSE 'exports' END AS queue,
    CASE WHEN h % 20 < 8 THEN 'RECOVERABLE' WHEN h % 20 < 13 THEN 'USER_ERROR'
         WHEN h % 20 < 17 THEN 'SYSTEM_ERROR' ELSE 'UNKNOWN' END AS error_class,
    {hex_group} AS fingerprint,
    CASE WHEN h / 2000 % 10 < 3 THEN 'pending' WHEN h / 2000 % 10 < 4 THEN 'requeued'
         WHEN h / 2000 % 10 < 8 THEN 'recovered' ELSE 'abandoned' END AS recovery
"""
# Knuth's multiplicative hash, kept below 2^32 so that it stays an integer on SQLite.
HASH = "SELECT i, i * 2654435761 % 4294967296 AS h FROM ({series}) AS s"

FILL_TABLE = """
CREATE TEMP TABLE fill (i INTEGER, job_id TEXT, failed_at DOUBLE PRECISION, attempts INTEGER,
    queue TEXT, error_class TEXT, fingerprint TEXT, recovery TEXT)
"""

# A requeued job waits on its queue again; a recovered one succeeded.
JOB_STATUS = """CASE WHEN error_class <> 'RECOVERABLE' THEN 'failed'
    WHEN recovery = 'requeued' THEN 'queued' WHEN recovery = 'recovered' THEN 'succeeded'
    ELSE 'failed' END"""

INSERT_JOBS = f"""
INSERT INTO queue_jobs (id, queue, task, payload, status, attempts, max_retries,
    dead_letter_queue, run_at, created_at, started_at, attempt_started_at, completed_at,
    last_error, labels)
SELECT job_id, queue, queue || '.run', {{payload}}, {JOB_STATUS}, attempts, 3,
    queue || '-dlq', failed_at - 60 * attempts, failed_at - 60 * attempts,
    failed_at - 60 * attempts, failed_at - 1,
    CASE WHEN recovery = 'requeued' AND error_class = 'RECOVERABLE' THEN NULL ELSE failed_at END,
    'TimeoutError: Timeout fetching building-' || (i % 50) || ' after 30s', {{labels}}
FROM fill
"""
PAYLOAD = '\'{"args":[\' || i || \'],"kwargs":{"site":"building-\' || (i % 50) || \'"}}\''
LABELS = "'{\"site_name\":\"building-' || (i % 50) || '\"}'"

# The dead letter that carried each failure: a succeeded job on the queue's DLQ.
INSERT_LETTERS = """
INSERT INTO queue_jobs (id, queue, task, payload, status, attempts, max_retries,
    dead_letter_queue, run_at, created_at, started_at, attempt_started_at, completed_at,
    labels)
SELECT 'dl-' || job_id || '-' || attempts, queue || '-dlq', 'deadletter.dead_letter',
    {payload}, 'succeeded', 1, 3, queue || '-dlq-parked', failed_at, failed_at, failed_at,
    failed_at, failed_at + 0.5, {labels}
FROM fill
"""
LETTER_PAYLOAD = '\'{"job_id":"\' || job_id || \'","reason":"retries exhausted"}\''

INSERT_FAILURES = """
INSERT INTO dlq_failures (dead_letter_id, job_id, queue, task, error_class, rule, fingerprint,
    error_type, error_message, http_status, retry_count, reason, labels, forensics_key,
    created_at, failed_at, handled_at)
SELECT 'dl-' || job_id || '-' || attempts, job_id, queue, queue || '.run', error_class,
    'default-' || lower(error_class), fingerprint,
    CASE error_class WHEN 'RECOVERABLE' THEN 'TimeoutError' WHEN 'USER_ERROR' THEN 'HTTPError'
        WHEN 'SYSTEM_ERROR' THEN 'HTTPError' ELSE 'KeyError' END,
    CASE error_class
        WHEN 'RECOVERABLE' THEN 'Timeout fetching building-' || (i % 50) || ' after 30s'
        WHEN 'USER_ERROR' THEN 'HTTP 400: chart ' || (i % 997) || ' has no series'
        WHEN 'SYSTEM_ERROR' THEN 'HTTP 500: Internal Server Error at node ' || (i % 13)
        ELSE '''series_' || (i % 89) || '''' END,
    CASE error_class WHEN 'USER_ERROR' THEN 400 WHEN 'SYSTEM_ERROR' THEN 500 END,
    attempts - 1, 'retries exhausted after ' || attempts || ' attempts', {labels},
    'failures/' || queue || '/day-' || CAST(failed_at / 86400 AS INTEGER) || '/dl-' || job_id
        || '.json.gz',
    failed_at - 60 * attempts, failed_at, failed_at + 0.5
FROM fill
"""

INSERT_RECOVERY = """
INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status, reason, requeue_count,
    created_at, updated_at)
SELECT job_id, 'dl-' || job_id || '-' || attempts, queue, recovery,
    CASE WHEN recovery = 'abandoned' THEN 'downstream retired' END,
    CASE WHEN recovery IN ('requeued', 'recovered') THEN 1 ELSE 0 END, failed_at, failed_at + 3600
FROM fill WHERE error_class = 'RECOVERABLE'
"""

INSERT_GROUPS = """
INSERT INTO dlq_error_groups (fingerprint, error_class, error_type, sample_message, queue,
    count, first_seen, last_seen)
SELECT fingerprint, min(error_class), min(error_type), min(error_message), min(queue),
    count(*), min(failed_at), max(failed_at)
FROM dlq_failures GROUP BY fingerprint
"""


def fill_sql(backend: str, rows: int, now: float) -> list[str]:
    """The statements that fill a migrated database with `rows` failures up to `now`."""
    hex16 = HEX16[backend].format
    columns = FILL_COLUMNS.format(
        hex_time=hex16(f"{int(now * 1e9)} - ({rows} - i) * {DAYS * 86_400_000_000_000 // rows}"),
        hex_i=hex16("i"),
        hex_group=hex16("(h % 20 * 100 + h / 80000 % 100 + 1) * 2654435761"),
        now=repr(now),
        n=rows,
        step=repr(DAYS * 86_400 / rows),
    )
    series = SERIES[backend].format(n=rows)
    json = JSON[backend].format
    return [
        FILL_TABLE,
        f"INSERT INTO fill SELECT {columns} FROM ({HASH.format(series=series)}) AS hashed",
        INSERT_JOBS.format(payload=json(PAYLOAD), labels=json(LABELS)),
        INSERT_LETTERS.format(payload=json(LETTER_PAYLOAD), labels=json(LABELS)),
        INSERT_FAILURES.format(labels=json(LABELS)),
        INSERT_RECOVERY,
        INSERT_GROUPS,
        "DROP TABLE fill",
    ]


def fill(url: str, rows: int, now: float) -> float:
    """Fill the database in one transaction; the seconds it took."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as lite:
            lite.execute("BEGIN IMMEDIATE")
            for statement in fill_sql("sqlite", rows, now):
                lite.execute(statement)
            lite.execute("COMMIT")
        return time.perf_counter() - started
    with psycopg.connect(url) as pg:
        for statement in fill_sql("postgres", rows, now):
            pg.execute(statement)
        pg.commit()
    # What autovacuum would have done by the time a database holds a million failures:
    # planner statistics and a visibility map.
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


@dataclass(frozen=True)
class Timing:
    what: str
    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p99(self) -> float:
        return p99(sorted(self.times))


def timed_calls(what: str, call: Callable[[], object], calls: int) -> Timing:
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return Timing(what, times)


def reads(store: Store, now: float) -> list[tuple[str, Callable[[], object]]]:
    """The reads measured, by name: the API's `stats` and first pages of `failures`."""
    system_errors = FailureFilter(error_class="SYSTEM_ERROR")
    billing = FailureFilter(queue="billing")
    return [
        ("stats", lambda: store.dlq_stats(now=now)),
        ("failures, first page of 50", lambda: list_failures(store, limit=50)),
        ("failures of one class, first page", lambda: list_failures(store, system_errors)),
        ("failures of one queue (4%), first page", lambda: list_failures(store, billing)),
    ]


def measure(backend: str, url: str, rows: int, calls: int) -> list[str]:
    now = time.time()
    store = open_store(url)
    try:
        store.migrate()
        seconds = fill(url, rows, now)
        [job] = store.list_jobs(limit=1)
        reference = timed_calls("get_job", lambda: store.get_job(job.id), calls)
        timings = [timed_calls(what, call, calls) for what, call in reads(store, now)]
        stats = store.dlq_stats(now=now)
    finally:
        store.close()
    lines = [_line(backend, t, calls, reference) for t in timings]
    lines.append(
        f"| {backend} | (filled in {seconds:,.0f} s: {stats.total_failed:,} failed jobs,"
        f" {stats.last_24h:,} in the last 24 h) | | | | | |"
    )
    return lines


def _line(backend: str, timing: Timing, calls: int, reference: Timing) -> str:
    ratio = timing.median / reference.median
    return (
        f"| {backend} | {timing.what} | {calls} | {timing.median * 1000:.2f} ms"
        f" | {timing.p99 * 1000:.2f} ms | {reference.median * 1000:.3f} ms | {ratio:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.extend(measure(backend, url, args.rows, args.calls))
    print(machine_line())
    print(f"{args.rows:,} failures; each read called {args.calls} times, after {WARMUP} more")
    print("| backend | read | calls | median | p99 | get_job median, same db | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
