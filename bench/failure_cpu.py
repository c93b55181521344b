"""The failure path's two halves in one process: wall and CPU per 1,000 jobs.

    .venv/bin/python bench/failure_cpu.py [--backends sqlite,postgres] [--jobs 3000]

Always-failing jobs go through their 4 attempts with the DLQ handler off (the retry
path), then one worker handles their dead letters alone (forensics to a local folder,
classification, routing). CPU is the process's user and system time: on 2 cores one
interpreter is the limit, so CPU per job is the figure a change to the Python moves,
and it moves less with the machine's other work than the rate does. To compare two
trees, run it under each one's `PYTHONPATH` in turn, several times. Prints a Markdown
table; `docs/benchmarks.md` records runs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from run import drain, machine_line, make_app, postgres_url, raw_insert_rate, sqlite_url


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of `action`."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    action()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def measure(backend: str, url: str, jobs: int) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        reference = raw_insert_rate(url, 20_000)
        app = make_app(url, Path(folder))
        app.enqueue_many(app.tasks["fail"].spec(n) for n in range(jobs))
        retries = timed(lambda: drain(app, dead_lettered=jobs))
        handler = timed(lambda: drain(app, handled=jobs))
        app.close()
    rows = []
    for what, (wall, cpu) in (("4 attempts, handler off", retries), ("handler alone", handler)):
        rows.append(
            f"| {backend} | {what} | {jobs:,} | {jobs / wall:,.0f}/s"
            f" | {cpu / jobs * 1e6:,.0f} µs | {reference:,.0f}/s |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=3000)
    args = parser.parse_args()
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    lines = []
    for backend in args.backends.split(","):
        with databases[backend]() as url:
            lines.extend(measure(backend, url, args.jobs))
    print(machine_line())
    print("| backend | half | jobs | rate | CPU per job | raw inserts, same db |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
