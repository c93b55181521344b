"""What the insert triggers cost PostgreSQL in a single enqueue: the server's CPU per
`task.enqueue` call, one thread, as migrated and with the triggers dropped.

    .venv/bin/python bench/pg_enqueue_triggers.py [--rounds 5] [--jobs 3000]

Each round makes a fresh database per variant, in alternating order: as migrated; without
the per-task metrics trigger on inserts (`task_metrics_jobs_insert`); without it and the
DLQ statistics one (`dlq_stats_jobs_insert`). The server's CPU is that of every
`postgres` process on the machine (bench/cpu_per_job.py). To compare two trees, run it
under each one's `PYTHONPATH` in turn. Prints a Markdown table of medians and ranges.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
from cpu_per_job import enqueue_singles, measured
from run import machine_line, make_app, postgres_url

Variant = TypeVar("Variant")
Pair = tuple[float, float]

VARIANTS = {
    "as migrated": "",
    "without the metrics insert trigger": "DROP TRIGGER task_metrics_jobs_insert ON queue_jobs",
    "without both insert triggers": (
        "DROP TRIGGER task_metrics_jobs_insert ON queue_jobs;"
        " DROP TRIGGER dlq_stats_jobs_insert ON queue_jobs"
    ),
}


def once(drop: str, jobs: int) -> tuple[float, float]:
    """Server CPU in microseconds per enqueue, and enqueues per second."""
    with postgres_url() as url, tempfile.TemporaryDirectory() as folder:
        app = make_app(url, Path(folder))
        if drop:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(drop)
        app.tasks["noop"].enqueue(-1)  # the connection and the statement, warmed
        cost = measured(jobs, lambda: enqueue_singles(app, jobs))
        app.close()
    return cost.server / jobs * 1e6, jobs / cost.wall


def spread(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):,.0f}{unit} ({min(values):,.0f}-{max(values):,.0f})"


def alternated(
    variants: dict[str, Variant], rounds: int, measure: Callable[[Variant], Pair]
) -> dict[str, list[Pair]]:
    """Each variant measured once a round, in the order reversed every other round."""
    results: dict[str, list[Pair]] = {name: [] for name in variants}
    for round_ in range(rounds):
        order = list(variants.items())
        for name, variant in order if round_ % 2 == 0 else reversed(order):
            results[name].append(measure(variant))
    return results


def print_table(header: str, results: dict[str, list[Pair]], units: tuple[str, str]) -> None:
    """A Markdown table under `header` (three columns): by variant, each of the two
    figures as median (range), with its unit."""
    print(machine_line())
    print(header)
    print("|---|---:|---:|")
    for name, runs in results.items():
        first, second = [run[0] for run in runs], [run[1] for run in runs]
        print(f"| {name} | {spread(first, units[0])} | {spread(second, units[1])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=3000)
    args = parser.parse_args()
    results = alternated(VARIANTS, args.rounds, lambda drop: once(drop, args.jobs))
    print_table(
        "| insert triggers | server CPU per enqueue | enqueues/s, 1 thread |", results, (" µs", "")
    )


if __name__ == "__main__":
    main()
