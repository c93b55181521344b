"""CPU per job of each workload, the worker's and the database server's, and the rates
those leave on this machine.

    .venv/bin/python bench/cpu_per_job.py [--backends sqlite,postgres] [--jobs 3000]

Workloads, in one process: single enqueue from one thread, no-op jobs processed,
always-failing jobs through their 4 attempts with the DLQ handler off (the retry path),
then their dead letters handled alone (forensics to a local folder, classification,
routing). *Worker* CPU is this process's user and system time; *server* CPU is that of
every `postgres` process on the machine (the server here is local; SQLite has none).
Two ceilings follow: all cores busy with this workload alone, cores / (worker +
server) per job; and one worker process, whose Python runs on one core at a time, 1 /
worker per job. A target above both needs less CPU per job, not more processes. To
compare two trees, run it under each one's `PYTHONPATH` in turn, several times.
Prints a Markdown table; `docs/benchmarks.md` records runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from run import (
    drain,
    machine_line,
    make_app,
    postgres_url,
    raw_single_rate,
    scratch_folder,
    sqlite_url,
)

from deadletter.app import App

# No-op jobs take microseconds: ten times as many, so that a worker's start and stop
# weigh little.
NOOP_SCALE = 10


def worker_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu() -> dict[int, float]:
    """CPU seconds so far of each `postgres` process, by pid; under the negated pid of
    each postmaster, its ended backends' (a connection closed meanwhile is counted)."""
    seconds = {}
    for process in psutil.process_iter(["name", "ppid", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] != "postgres" or times is None:
            continue
        seconds[process.pid] = times.user + times.system
        if _is_postmaster(process.info["ppid"]):
            seconds[-process.pid] = times.children_user + times.children_system
    return seconds


def _is_postmaster(parent: int) -> bool:
    try:
        return psutil.Process(parent).name() != "postgres"
    except psutil.NoSuchProcess:
        return True


@dataclass(frozen=True)
class Cost:
    jobs: int
    wall: float
    worker: float
    server: float

    def row(self, backend: str, workload: str) -> str:
        worker, server = self.worker / self.jobs, self.server / self.jobs
        all_cores = (os.cpu_count() or 1) / (worker + server)
        return (
            f"| {backend} | {workload} | {self.jobs:,} | {self.jobs / self.wall:,.0f}/s"
            f" | {worker * 1e6:,.0f} µs | {server * 1e6:,.0f} µs"
            f" | {all_cores:,.0f}/s | {1 / worker:,.0f}/s |"
        )


def measured(jobs: int, action: Callable[[], object]) -> Cost:
    server_before, worker_before = server_cpu(), worker_cpu()
    started = time.perf_counter()
    action()
    wall = time.perf_counter() - started
    worker = worker_cpu() - worker_before
    server_after = server_cpu()
    # A backend that started meanwhile counts from zero.
    server = sum(used - server_before.get(pid, 0.0) for pid, used in server_after.items())
    return Cost(jobs, wall, worker, server)


def enqueue_singles(app: App, jobs: int) -> None:
    noop = app.tasks["noop"]
    for n in range(jobs):
        noop.enqueue(n)


def measure(backend: str, url: str, jobs: int) -> list[str]:
    app = make_app(url, scratch_folder())
    app.tasks["noop"].enqueue(-1)  # the connection and the statement, warmed
    noops = NOOP_SCALE * jobs
    costs = {
        "raw INSERT, one durable commit each, 1 thread (reference)": measured(
            jobs, lambda: raw_single_rate(url, jobs)
        ),
        "enqueue, one job per call, 1 thread": measured(jobs, lambda: enqueue_singles(app, jobs)),
    }
    app.enqueue_many(app.tasks["noop"].spec(n) for n in range(noops - jobs - 1))
    costs["no-op jobs processed"] = measured(noops, lambda: drain(app, succeeded=noops))
    app.enqueue_many(app.tasks["fail"].spec(n) for n in range(jobs))
    costs["always failing, 4 attempts, handler off"] = measured(
        jobs, lambda: drain(app, dead_lettered=jobs)
    )
    costs["their dead letters, handler alone"] = measured(jobs, lambda: drain(app, handled=jobs))
    app.close()
    return [cost.row(backend, workload) for workload, cost in costs.items()]


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
    print(
        "| backend | workload | jobs | rate | worker CPU a job | server CPU a job"
        " | all cores on it | one worker process |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
