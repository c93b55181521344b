"""Where the CPU of concurrent single enqueues goes on SQLite: jobs/s and the process's
user and system CPU per job, 8 threads of one-job `task.enqueue` calls.

    .venv/bin/python bench/enqueue_cpu.py [--rounds 3] [--without-enqueue-trigger]

`--without-enqueue-trigger` drops the per-task metrics trigger on queue_jobs' inserts
(migration 0019) first, to show its share. Prints one line per round.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from deadletter.app import App
from deadletter.config import settings_from_mapping

THREADS = 8
CALLS = 500  # per thread


def round_once(folder: Path, *, drop_trigger: bool) -> str:
    database = folder / "deadletter.db"
    app = App(
        settings_from_mapping(
            {"database_url": f"sqlite:///{database}", "blob_url": str(folder / "blobs")}
        )
    )

    @app.task(queue="bench")
    def noop(n: int) -> None:
        return None

    noop.enqueue(-1)  # the schema and this thread's connection, before the clock
    if drop_trigger:
        with sqlite3.connect(database) as conn:
            conn.execute("DROP TRIGGER task_metrics_jobs_insert")

    def produce(first: int) -> None:
        for n in range(first, first + CALLS):
            noop.enqueue(n)

    commits = app.store.group_commit.commits
    threads = [threading.Thread(target=produce, args=(k * CALLS,)) for k in range(THREADS)]
    before, started = os.times(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, after = time.perf_counter() - started, os.times()
    commits = app.store.group_commit.commits - commits
    app.close()
    jobs = THREADS * CALLS
    user = (after.user - before.user) / jobs * 1e6
    system = (after.system - before.system) / jobs * 1e6
    return (
        f"{jobs / seconds:,.0f} jobs/s, CPU per job {user + system:.0f} us"
        f" (user {user:.0f}, system {system:.0f}), {jobs / commits:.1f} jobs a commit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--without-enqueue-trigger", action="store_true")
    args = parser.parse_args()
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            print(round_once(Path(folder), drop_trigger=args.without_enqueue_trigger))


if __name__ == "__main__":
    main()
