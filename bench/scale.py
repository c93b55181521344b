"""Scale-out: throughput with 1, 2 and 4 worker processes, and a lease's cost with a
million jobs queued against a thousand.

    .venv/bin/python bench/scale.py [--parts throughput,lease] [--processes 1,2,4]
        [--rounds 3] [--backends sqlite,postgres] [--scale 1.0]

Throughput, on PostgreSQL: each round, for each process count, a fresh database gets
the raw-insert reference (bench/run.py), then the jobs in bulk, then that many burst
worker processes (forked, as bench/dlq_backlog.py starts them, 2 threads each) drain
them; the clock runs from all processes ready to the last one gone. Two workloads:
no-op jobs (`app.worker(dlq=False)`), and the failure path: always-failing jobs, 4
attempts, zero backoff, each worker with its DLQ handler (`app.worker()`, as
`deadletter worker` runs), so every job is dead-lettered and its letter handled.
Beside each: CPU time of the worker processes, of the PostgreSQL server (postmaster
and all its processes) and of the whole machine, in cores busy over the run.

Lease, on each backend: `store.lease(...)` of one batch (the default batch size) timed
`--leases` times with 1,000 and with 1,000,000 jobs queued (enqueued in batches of
10,000; on PostgreSQL a CHECKPOINT then, so that writing the fill back does not fall
among the leases); after each timed lease, untimed, the batch is finished and as many
new jobs are enqueued, so the queue stays at its size. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from run import (
    QUEUE,
    machine_line,
    make_app,
    p99,
    postgres_url,
    raw_insert_rate,
    scratch_folder,
    sqlite_url,
    timed_processes,
)

from deadletter.app import App
from deadletter.config import WorkerSettings
from deadletter.model import JobState
from deadletter.store.base import Succeeded

DLQ = f"{QUEUE}-dlq"
REFERENCE_ROWS = 20_000
ENQUEUE_BATCH = 10_000
# Leases before the timed ones: the first after a bulk fill reads cold pages.
WARM_LEASES = 10


@dataclass(frozen=True)
class Workload:
    name: str
    task: str
    jobs: int  # at scale 1
    dlq: bool
    # What the queues hold once it is done, by (queue, state).
    done: Callable[[int], dict[tuple[str, JobState], int]]


WORKLOADS = (
    Workload("no-op jobs", "noop", 20_000, False, lambda n: {(QUEUE, JobState.SUCCEEDED): n}),
    Workload(
        "always failing, 4 attempts, DLQ handler on",
        "fail",
        3_000,
        True,
        lambda n: {(QUEUE, JobState.FAILED): n, (DLQ, JobState.SUCCEEDED): n},
    ),
)


# -- CPU accounting ----------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU seconds so far: of this process's waited-for children (the workers), of the
    PostgreSQL server, of the machine."""

    workers: float
    server: float
    machine: float

    @staticmethod
    def now() -> Cpu:
        mine = os.times()
        machine = psutil.cpu_times()
        return Cpu(
            mine.children_user + mine.children_system,
            server_cpu(),
            sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
        )

    def __add__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.workers + other.workers, self.server + other.server, self.machine + other.machine
        )

    def __sub__(self, other: Cpu) -> Cpu:
        return self + Cpu(-other.workers, -other.server, -other.machine)


def postmaster() -> psutil.Process | None:
    """The PostgreSQL server on this host, if it runs here and is visible."""
    for process in psutil.process_iter(["name"]):
        parent = process.parent() if process.info["name"] == "postgres" else None
        if parent is not None and parent.name() != "postgres":
            return process
    return None


def server_cpu() -> float:
    """The postmaster's CPU seconds, its live processes' and those of its ended ones
    (backends of connections closed since)."""
    server = postmaster()
    if server is None:
        return 0.0
    total = server.cpu_times()
    seconds = total.user + total.system + total.children_user + total.children_system
    for child in server.children():
        # A backend may end meanwhile: its time is then in the reaped children's.
        with contextlib.suppress(psutil.NoSuchProcess):
            own = child.cpu_times()
            seconds += own.user + own.system
    return seconds


# -- throughput ----------------------------------------------------------------------


def enqueue(app: App, task: str, jobs: int) -> None:
    """`jobs` jobs of `task`, in batches through the store's bulk enqueue."""
    spec = app.tasks[task].spec
    for first in range(0, jobs, ENQUEUE_BATCH):
        app.enqueue_many(spec(n) for n in range(first, min(first + ENQUEUE_BATCH, jobs)))


@dataclass
class Runs:
    """A workload's rounds at one process count."""

    rates: list[float]
    references: list[float]
    jobs: int = 0
    seconds: float = 0.0
    cpu: Cpu = Cpu(0.0, 0.0, 0.0)

    def add(self, jobs: int, seconds: float, reference: float, cpu: Cpu) -> None:
        self.rates.append(jobs / seconds)
        self.references.append(reference)
        self.jobs += jobs
        self.seconds += seconds
        self.cpu += cpu

    def markdown(self, name: str, processes: int, first: Runs) -> str:
        rate, reference = statistics.median(self.rates), statistics.median(self.references)
        spread = f"{min(self.rates):,.0f}-{max(self.rates):,.0f}"
        # Cores busy on average over the timed runs.
        cpu = self.cpu
        cores = [part / self.seconds for part in (cpu.workers, cpu.server, cpu.machine)]
        per_job = [1000 * part / self.jobs for part in (cpu.workers, cpu.server)]
        return (
            f"| {name} | {processes} | {rate:,.0f}/s | {spread} | {reference:,.0f}/s"
            f" | {rate / reference:.3f} | {rate / statistics.median(first.rates):.2f}x"
            f" | {cores[0]:.2f} | {cores[1]:.2f} | {cores[2]:.2f}"
            f" | {per_job[0]:.2f} + {per_job[1]:.2f} |"
        )


def worker_process(url: str, folder: Path, dlq: bool) -> Callable[[], None]:
    """One worker process, set up: its store open, its DLQ handler built with `dlq`."""
    app = make_app(url, folder)
    worker = app.worker(dlq=dlq)

    def run() -> None:
        worker.run(burst=True)
        app.close()

    return run


def throughput_round(workload: Workload, processes: int, jobs: int, runs: Runs) -> None:
    folder = scratch_folder()
    with postgres_url() as url:
        reference = raw_insert_rate(url, REFERENCE_ROWS)
        app = make_app(url, folder)
        enqueue(app, workload.task, jobs)
        # The workers are forked: no connection of this process may be open then.
        app.close()
        before = Cpu.now()
        seconds = timed_processes(processes, lambda: worker_process(url, folder, workload.dlq))
        runs.add(jobs, seconds, reference, Cpu.now() - before)
        counted = {key: n for key, n in app.store.count_states().items() if n}
        app.close()
    if counted != workload.done(jobs):
        raise RuntimeError(f"{workload.name}: expected {workload.done(jobs)}, got {counted}")


def throughput(args: argparse.Namespace) -> list[str]:
    results = {(w.name, p): Runs([], []) for w in WORKLOADS for p in args.processes}
    for round_ in range(args.rounds):
        for workload in WORKLOADS:
            # Interleaved, so that the machine's other load falls on every count alike.
            for processes in args.processes:
                runs = results[workload.name, processes]
                throughput_round(workload, processes, int(workload.jobs * args.scale), runs)
                print(f"round {round_ + 1}: {workload.name}, {processes}: {runs.rates[-1]:,.0f}/s")
    return [
        runs.markdown(name, processes, results[name, args.processes[0]])
        for (name, processes), runs in results.items()
    ]


# -- the lease's cost ------------------------------------------------------------------


@contextmanager
def filled(backend: str, queued: int) -> Iterator[tuple[App, float]]:
    """A fresh database with `queued` no-op jobs waiting, and its raw-insert reference."""
    databases = {"sqlite": sqlite_url, "postgres": postgres_url}
    with databases[backend]() as url:
        reference = raw_insert_rate(url, REFERENCE_ROWS)
        app = make_app(url)
        enqueue(app, "noop", queued)
        if backend == "postgres":
            # The fill's dirty pages written now, not by a checkpoint among the leases.
            with psycopg.connect(url, autocommit=True) as pg:
                pg.execute("CHECKPOINT")
        try:
            yield app, reference
        finally:
            app.close()


def lease_times(app: App, leases: int) -> list[float]:
    """Seconds per lease of one batch; the queue kept at its size in between, untimed."""
    store, noop = app.store, app.tasks["noop"]
    batch = WorkerSettings().batch_size
    times = []
    for _ in range(WARM_LEASES + leases):
        now = time.time()
        started = time.perf_counter()
        leased = store.lease([QUEUE], limit=batch, worker="bench", now=now, lease_seconds=60)
        times.append(time.perf_counter() - started)
        if len(leased) != batch:
            raise RuntimeError(f"leased {len(leased)} jobs, not {batch}")
        store.finish([Succeeded(job.lease, time.time()) for job in leased], now=time.time())
        app.enqueue_many(noop.spec(n) for n in range(batch))
    return sorted(times[WARM_LEASES:])


def lease_cost(args: argparse.Namespace) -> list[str]:
    lines = []
    for backend in args.backends:
        medians = {}
        for queued in (1_000, int(1_000_000 * args.scale)):
            with filled(backend, queued) as (app, reference):
                times = lease_times(app, int(args.leases * args.scale))
            medians[queued] = statistics.median(times)
            ratio = medians[queued] / medians[1_000]
            lines.append(
                f"| {backend} | {queued:,} | {len(times)} | {1000 * medians[queued]:.2f} ms"
                f" | {1000 * p99(times):.2f} ms | {ratio:.2f} | {reference:,.0f}/s |"
            )
            print(lines[-1], flush=True)
    return lines


def load() -> str:
    return "load average " + " ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", default="throughput,lease")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres", help="of the lease part")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--leases", type=int, default=300)
    args = parser.parse_args()
    args.processes = [int(p) for p in args.processes.split(",")]
    args.backends = args.backends.split(",")
    parts = args.parts.split(",")
    # The machine is shared: its load says how much of it the run had.
    print(f"{machine_line()}; {load()}")
    if "throughput" in parts:
        table = throughput(args)
        print("\nPostgreSQL, burst worker processes of 2 threads; median of the rounds")
        print(
            "| workload | processes | jobs/s | range | raw insert, same db | ratio"
            " | vs first | workers, cores | PostgreSQL, cores | machine, cores"
            " | CPU ms per job, workers + PostgreSQL |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(table))
    if "lease" in parts:
        print(f"\nstore.lease of {WorkerSettings().batch_size} jobs")
        table = lease_cost(args)
        print("| backend | jobs queued | leases | median | p99 | median vs 1,000 | raw insert |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(table))
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
