"""A PostgreSQL lease by itself and inside a no-op run: how long a lease of a batch takes,
the worker's CPU it costs, and the no-op rate of one burst worker.

    .venv/bin/python bench/pg_lease.py [--rounds 3] [--jobs 60000]

Each round makes fresh databases: one with `--jobs` no-op jobs queued, leased 100 times
in batches of `make_app`'s size (400) by the store alone (no worker), and one where a
burst worker runs `--jobs` no-op jobs. To compare two trees, run it under each one's
`PYTHONPATH` in turn, alternated. Prints a Markdown table, one row per round.
"""

from __future__ import annotations

import argparse
import statistics
import time

from run import drain, machine_line, make_app, p99, postgres_url, timed

from deadletter.app import App

BATCH = 400
LEASES = 100


def lease_alone(jobs: int) -> tuple[float, float, float]:
    """Median and p99 milliseconds of a lease of BATCH jobs, and the worker's CPU per lease
    in milliseconds."""
    with postgres_url() as url:
        app = make_app(url)
        queue_noops(app, jobs)
        seconds: list[float] = []
        cpu = time.process_time()
        for _ in range(LEASES):
            started = time.perf_counter()
            app.store.lease(
                ["bench"], limit=BATCH, worker="bench", now=time.time(), lease_seconds=60
            )
            seconds.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu
        app.close()
    seconds.sort()
    return statistics.median(seconds) * 1000, p99(seconds) * 1000, cpu / LEASES * 1000


def noop_rate(jobs: int) -> float:
    with postgres_url() as url:
        app = make_app(url)
        queue_noops(app, jobs)
        rate = jobs / timed(lambda: drain(app, succeeded=jobs))
        app.close()
    return rate


def queue_noops(app: App, jobs: int) -> None:
    noop = app.tasks["noop"]
    for start in range(0, jobs, 10_000):
        app.enqueue_many(noop.spec(n) for n in range(start, min(start + 10_000, jobs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=60_000)
    args = parser.parse_args()
    print(machine_line())
    print(f"| round | lease of {BATCH}: median | p99 | worker CPU a lease | no-op jobs/s |")
    print("|---:|---:|---:|---:|---:|")
    for number in range(1, args.rounds + 1):
        median, high, cpu = lease_alone(args.jobs)
        rate = noop_rate(args.jobs)
        print(f"| {number} | {median:.1f} ms | {high:.1f} ms | {cpu:.1f} ms | {rate:,.0f} |")


if __name__ == "__main__":
    main()
