"""What the statistics' counters (migration 0006) cost the statements that write jobs
and recovery rows, on each backend.

    .venv/bin/python bench/counters.py [--backends sqlite,postgres] [--rounds 60]

Two databases of one backend side by side: one migrated as shipped, one with the
counters' triggers dropped. Each round runs the life of a batch of jobs on both, in
turns (enqueue, lease, dead-letter, mark failed, recovery rows, requeue, delete), for
batches of 1 and of 400 jobs; each statement's median time is printed for both, and
the difference. Commits are not durable here (SQLite `synchronous = OFF`, PostgreSQL
`synchronous_commit = off`): a flush, the same with or without counters, would drown
the difference. The whole-path figures are bench/run.py's and bench/dlq.py's.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from typing import Any

import psycopg
from run import machine_line, postgres_url, sqlite_url

from deadletter.store import open_store

Execute = Callable[[str, list[Any]], object]

BATCHES = (1, 400)
WARMUP = 3
# The counters' triggers, by name and table (on SQLite also those of its two views).
SQLITE_TRIGGERS = (
    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'dlq_stats_%'"
)
POSTGRES_TRIGGERS = (
    "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE 'dlq\\_stats\\_%'"
)

# (what, SQL with `{ids}` for the batch's placeholders and `{rows}` for one group per
# job, and whether a time comes before the ids), in the order a job lives them.
STEPS = [
    (
        "enqueue (insert, queued)",
        "INSERT INTO queue_jobs (id, queue, task, payload, status, attempts, max_retries,"
        " dead_letter_queue, run_at, created_at) VALUES {rows}",
        False,
    ),
    (
        "lease (update, not failed)",
        "UPDATE queue_jobs SET status = 'running', attempts = attempts + 1 WHERE id IN ({ids})",
        False,
    ),
    (
        "dead-letter (update, not failed)",
        "UPDATE queue_jobs SET status = 'dead_lettered', completed_at = ? WHERE id IN ({ids})",
        True,
    ),
    (
        "mark failed (update, into failed)",
        "UPDATE queue_jobs SET status = 'failed' WHERE id IN ({ids}) AND status = 'dead_lettered'",
        False,
    ),
    (
        "recovery rows (insert)",
        "INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status, created_at,"
        " updated_at) VALUES {rows}",
        False,
    ),
    (
        "requeue (update, out of failed)",
        "UPDATE queue_jobs SET status = 'queued', completed_at = NULL WHERE id IN ({ids})",
        False,
    ),
    ("delete recovery rows", "DELETE FROM dlq_recovery_queue WHERE job_id IN ({ids})", False),
    ("delete jobs", "DELETE FROM queue_jobs WHERE id IN ({ids})", False),
]
ROW_GROUPS = {
    "enqueue (insert, queued)": "(?, 'q', 't', '{}', 'queued', 0, 3, 'q-dlq', 0, 0)",
    "recovery rows (insert)": "(?, 'dl', 'q', 'pending', 0, 0)",
}


class Side:
    """One database, written through one connection in one open transaction."""

    def __init__(self, execute: Execute, commit: Callable[[], object], style: str) -> None:
        self.execute, self.commit, self.style = execute, commit, style

    def run(self, step: int, ids: list[str]) -> float:
        """Seconds of step `step` for the jobs `ids`."""
        what, sql, timed_param = STEPS[step]
        group = ROW_GROUPS.get(what, "")
        text = sql.format(ids=", ".join("?" * len(ids)), rows=", ".join([group] * len(ids)))
        params = [time.time(), *ids] if timed_param else ids
        if self.style == "%s":
            text = text.replace("?", "%s")
        started = time.perf_counter()
        self.execute(text, params)
        return time.perf_counter() - started


@contextmanager
def sqlite_side(counters: bool) -> Iterator[Side]:
    with sqlite_url() as url:
        migrate(url)
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as db:
            db.execute("PRAGMA synchronous = OFF")
            for (trigger,) in [] if counters else db.execute(SQLITE_TRIGGERS).fetchall():
                db.execute(f"DROP TRIGGER {trigger}")
            db.execute("BEGIN")

            def commit() -> None:
                db.execute("COMMIT")
                db.execute("BEGIN")

            yield Side(db.execute, commit, "?")


@contextmanager
def postgres_side(counters: bool) -> Iterator[Side]:
    with postgres_url() as url:
        migrate(url)
        with psycopg.connect(url) as db:
            db.execute("SET synchronous_commit = off")
            for trigger, table in [] if counters else db.execute(POSTGRES_TRIGGERS).fetchall():
                db.execute(f"DROP TRIGGER {trigger} ON {table}")
            db.commit()
            yield Side(db.execute, db.commit, "%s")


def migrate(url: str) -> None:
    store = open_store(url)
    store.migrate()
    store.close()


def rounds(sides: dict[bool, Side], batch: int, count: int) -> dict[tuple[int, bool], list[float]]:
    """Seconds per (step, counters on) over `count` rounds, after the warm-up rounds that
    fill the statement and plan caches."""
    times: dict[tuple[int, bool], list[float]] = {}
    for number in range(WARMUP + count):
        for counters, side in sides.items():
            ids = [f"job_{uuid.uuid4().hex}" for _ in range(batch)]
            for step in range(len(STEPS)):
                seconds = side.run(step, ids)
                if number >= WARMUP:
                    times.setdefault((step, counters), []).append(seconds)
            side.commit()
    return times


def measure(backend: str, count: int) -> list[str]:
    opener = {"sqlite": sqlite_side, "postgres": postgres_side}[backend]
    lines = []
    with ExitStack() as stack:
        sides = {counters: stack.enter_context(opener(counters)) for counters in (True, False)}
        for batch in BATCHES:
            times = rounds(sides, batch, count)
            for step, (what, _, _) in enumerate(STEPS):
                on, off = (statistics.median(times[step, c]) * 1000 for c in (True, False))
                lines.append(
                    f"| {backend} | {what} | {batch} | {off:.3f} ms | {on:.3f} ms"
                    f" | {on - off:+.3f} ms |"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    lines = [line for backend in args.backends.split(",") for line in measure(backend, args.rounds)]
    print(machine_line())
    print("| backend | statement | jobs | without counters | with counters | added |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
