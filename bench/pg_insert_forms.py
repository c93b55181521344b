"""Two forms of the PostgreSQL enqueue statement, by rows per statement, each statement
autocommitted (one durable commit), beside a raw INSERT into a bare table:

- arrays: `INSERT_JOBS`, one array per column unnested (what a batch uses);
- values: one VALUES row per job (what a single job uses, `INSERT_JOB`, and what a
  batch of a few would be).

    .venv/bin/python bench/pg_insert_forms.py [--sizes 1,2,4,16,64] [--rounds 3]

Prints rows/s per form and size, rounds alternated.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.model import NewJob
from deadletter.store import postgres

ADMIN = os.environ.get("DEADLETTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
STATEMENTS = 400  # per form, size and round
VALUES_ROW = "('queued', %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)"


def values_sql(rows: int) -> str:
    return (
        postgres.INSERT_JOB.replace(VALUES_ROW, ", ".join([VALUES_ROW] * rows)) + " GROUP BY queue"
    )


def insert_values(conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> None:
    conn.execute(values_sql(len(jobs)), [v for job in jobs for v in postgres._job_values(job)])


def insert_raw(conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> None:
    for job in jobs:  # one statement, one commit, per row
        conn.execute("INSERT INTO raw VALUES (%s, %s)", (job.id, '{"args":[1],"kwargs":{}}'))


FORMS: dict[str, Callable[[psycopg.Connection[Any], Sequence[NewJob]], None]] = {
    "raw single rows": insert_raw,
    "arrays": postgres._insert_arrays,
    "values": insert_values,
}


def rate(app: App, conn: psycopg.Connection[Any], form: str, size: int) -> float:
    task = app.tasks["noop"]
    jobs = app.new_jobs(task.spec(n) for n in range(size * STATEMENTS))
    started = time.perf_counter()
    for first in range(0, len(jobs), size):
        FORMS[form](conn, jobs[first : first + size])
    return len(jobs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,2,4,16,64")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    name = f"bench_forms_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    url = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            app = App(settings_from_mapping({"database_url": url, "blob_url": folder}))
            app.task(queue="bench", name="noop")(lambda n: None)
            app.store.migrate()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE raw (id TEXT PRIMARY KEY, payload JSONB)")
                for size in (int(s) for s in args.sizes.split(",")):
                    found: dict[str, list[float]] = {form: [] for form in FORMS}
                    for _ in range(args.rounds):
                        for form in FORMS:
                            found[form].append(rate(app, conn, form, size))
                    for form, rates in found.items():
                        shown = ", ".join(f"{r:,.0f}/s" for r in rates)
                        print(f"{size:>3} rows a statement, {form}: {shown}", flush=True)
            app.close()
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


if __name__ == "__main__":
    main()
