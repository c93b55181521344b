"""The single enqueue's ceiling on PostgreSQL with no Python in the way: the store's
one-job statement (`INSERT_JOB`) run by pgbench, a C client, one connection, each
statement its own durable commit, beside a raw INSERT into a bare table (id, payload)
on the same database.

    .venv/bin/python bench/pg_insert_ceiling.py [--rounds 4] [--seconds 6]

Variants, alternated round by round, each on the same migrated database: the raw row;
the store's statement as migrated; the same with the two insert triggers disabled (the
per-task metrics and the DLQ statistics). For each, statements per second and the
server's CPU per statement (every `postgres` process, bench/cpu_per_job.py). If the
store's statement alone runs below a rate, no Python client can enqueue one job per
call faster. Prints a Markdown table of medians and ranges; needs `pgbench` (Debian's
postgresql-client).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from cpu_per_job import server_cpu
from pg_enqueue_triggers import alternated, print_table
from run import postgres_url

from deadletter.store.postgres import INSERT_JOB, PostgresStore

# A job's values in INSERT_JOB's order (store/postgres.py, NEW_JOB_COLUMNS); pgbench
# draws the id, so that every statement inserts a row.
JOB_VALUES = (
    "'job_' || :id", "'bench'", "'noop'", "'{\"args\": [1], \"kwargs\": {}}'", "0", "3",
    "'bench-dlq'", "1.0e9", "1.0e9", "'{}'", "NULL", "NULL",
)  # fmt: skip
DRAW_ID = "\\set id random(1, 1000000000000)\n"
RAW = "INSERT INTO raw_rows (id, payload) VALUES ('job_' || :id, '{\"args\": [1]}')"
INSERT_TRIGGERS = ("task_metrics_jobs_insert", "dlq_stats_jobs_insert")


def store_statement() -> str:
    """INSERT_JOB with the job's values written in, as pgbench runs it."""
    parts = INSERT_JOB.split("%s")
    if len(parts) != len(JOB_VALUES) + 1:
        raise RuntimeError(f"INSERT_JOB takes {len(parts) - 1} values, not {len(JOB_VALUES)}")
    text = parts[0] + "".join(v + rest for v, rest in zip(JOB_VALUES, parts[1:], strict=True))
    return " ".join(text.split())  # pgbench reads a statement up to its line's end


def pgbench(url: str, script: Path, seconds: int) -> tuple[float, float]:
    """Statements per second, and the server's CPU per statement in microseconds."""
    before = server_cpu()
    done = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", "1", "-T", str(seconds), "-f", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    time.sleep(0.5)  # the backend that ended is reaped, its CPU counted in its parent's
    after = server_cpu()
    rate = float(_field(done, r"tps = ([\d.]+)"))
    statements = int(_field(done, r"transactions actually processed: (\d+)"))
    server = sum(used - before.get(pid, 0.0) for pid, used in after.items())
    return rate, server / statements * 1e6


def _field(output: str, pattern: str) -> str:
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output}")
    return found.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    with postgres_url() as url, tempfile.TemporaryDirectory() as folder:
        store = PostgresStore(url)
        store.migrate()
        store.close()
        scripts = {}
        for name, statement in (("raw", RAW), ("store", store_statement())):
            scripts[name] = Path(folder) / f"{name}.sql"
            scripts[name].write_text(DRAW_ID + statement + "\n")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw_rows (id text PRIMARY KEY, payload text)")
        results = run_rounds(url, scripts, args.rounds, args.seconds)
    print_table(
        "| statement, one durable commit each | statements/s, 1 connection | server CPU each |",
        results,
        ("", " µs"),
    )


def run_rounds(
    url: str, scripts: dict[str, Path], rounds: int, seconds: int
) -> dict[str, list[tuple[float, float]]]:
    variants = {
        "raw INSERT, bare table (reference)": (scripts["raw"], "ENABLE"),
        "the store's INSERT_JOB": (scripts["store"], "ENABLE"),
        "the same, insert triggers disabled": (scripts["store"], "DISABLE"),
    }

    def measure(variant: tuple[Path, str]) -> tuple[float, float]:
        script, triggers = variant
        with psycopg.connect(url, autocommit=True) as conn:
            for trigger in INSERT_TRIGGERS:
                conn.execute(f"ALTER TABLE queue_jobs {triggers} TRIGGER {trigger}")
        return pgbench(url, script, seconds)

    return alternated(variants, rounds, measure)


if __name__ == "__main__":
    main()
