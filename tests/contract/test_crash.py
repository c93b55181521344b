"""Worker processes killed, frozen and run side by side: no job lost, duplicated or stuck."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.model import JobState
from tests.support import worker_process
from tests.support.invariants import check_jobs

ROOT = Path(__file__).resolve().parents[2]
DLQ = f"{worker_process.QUEUE}-dlq"


class Workers:
    """Worker processes of tests.support.worker_process, all killed at the end."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, role: str = "steady", lease: float = 1.0) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tests.support.worker_process"]
        proc = subprocess.Popen([*command, self.url, str(self.log), role, str(lease)], cwd=ROOT)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)

    def executions(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]


@pytest.fixture
def workers(store_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(store_url, tmp_path / "executions.log")
    yield group
    group.kill_all()


def enqueue(workers: Workers, count: int, sleep: float = 0.0) -> tuple[App, list[str]]:
    app = worker_process.build(workers.url, str(workers.log), "producer", 1.0)
    task = app.tasks["crash.work"]
    return app, app.enqueue_many(task.spec(n, sleep) for n in range(count))


def finish(workers: Workers, app: App, ids: list[str], timeout: float = 240) -> None:
    """Run a burst worker to completion, then check every job."""
    proc = workers.start("burst")
    proc.wait(timeout)
    report = check_jobs(app.store, ids, [DLQ])
    assert report.problems == {}
    assert len(report.ok) == len(ids)


def successes_within_lost_leases(app: App, workers: Workers) -> list[str]:
    """Jobs that succeeded more often than their lost leases can explain: charged, or lost
    with their worker before their begin was written (worker/begins.py)."""
    ok = Counter(fields[0] for fields in workers.executions() if fields[4] == "ok")
    suspicious = []
    for job_id, count in ok.items():
        lost = [
            a for a in app.store.attempts(job_id) if (a.error_type or "").endswith("WorkerLost")
        ]
        job = app.store.get_job(job_id)
        if job is None or count > 1 + len(lost) + job.worker_losses:
            suspicious.append(job_id)
    return suspicious


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(workers: Workers) -> None:
    app, ids = enqueue(workers, 3000)
    rng = random.Random(7)
    running = [workers.start() for _ in range(2)]
    for _ in range(12):
        time.sleep(rng.uniform(0.1, 0.6))
        victim = running.pop(rng.randrange(len(running)))
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        running.append(workers.start())
    workers.kill_all()
    finish(workers, app, ids)
    assert successes_within_lost_leases(app, workers) == []
    counts = app.store.count_states()
    ended = (JobState.SUCCEEDED, JobState.DEAD_LETTERED, JobState.FAILED)
    assert sum(counts.get(("crash", state), 0) for state in ended) == 3000
    app.close()


@pytest.mark.slow
def test_several_workers_never_run_one_job_twice(workers: Workers) -> None:
    app, ids = enqueue(workers, 2000)
    for _ in range(3):
        workers.start(lease=30.0)
    finish(workers, app, ids)
    starts = Counter((f[0], f[1]) for f in workers.executions() if f[4] == "start")
    assert [key for key, n in starts.items() if n > 1] == []
    app.close()


def test_frozen_worker_cannot_overwrite_a_later_outcome(workers: Workers) -> None:
    app, [job_id] = enqueue(workers, 1, sleep=1.0)
    frozen = workers.start("doomed", lease=1.0)
    assert wait_for(lambda: any(f[4] == "start" for f in workers.executions()), 20)
    frozen.send_signal(signal.SIGSTOP)
    time.sleep(1.5)
    finish(workers, app, [job_id])
    frozen.send_signal(signal.SIGCONT)
    assert wait_for(lambda: any(f[4] == "fail" for f in workers.executions()), 20)
    time.sleep(1.0)
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED
    assert app.store.list_jobs(queue=DLQ) == []
    app.close()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
