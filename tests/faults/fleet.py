"""Worker processes of tests.faults.outage_worker, and what the outage tests check of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from deadletter.model import JobState
from tests.faults import outage_worker

ROOT = Path(__file__).resolve().parents[2]
# The scale (50 kills during 10,000 jobs, components away for 30 s) on demand;
# CI runs a smaller one that meets the same code.
FULL = os.environ.get("DEADLETTER_FAULTS_FULL") == "1"
RESUME_WITHIN = 1.0
# What a worker logs when the store goes away and when it is back (worker/outage.py).
OUTAGE_BEGINS = "store unavailable, waiting for it"
OUTAGE_ENDS = "store available again after an outage of"


class Fleet:
    """Worker processes of tests.faults.outage_worker, each logging to its own file."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.journal = folder / "journal.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for index in range(count):
            stderr = (self.folder / f"worker{index}.log").open("wb")
            command = [sys.executable, "-m", "tests.faults.outage_worker", self.url]
            self.procs.append(
                subprocess.Popen([*command, str(self.journal)], cwd=ROOT, stderr=stderr)
            )

    def events(self, event: str) -> list[tuple[str, float]]:
        """(job id, time) of every journal line of `event`."""
        lines = self.journal.read_text().splitlines() if self.journal.exists() else []
        return [(f[0], float(f[3])) for f in map(str.split, lines) if f[2] == event]

    def logs(self) -> list[str]:
        return [(self.folder / f"worker{i}.log").read_text() for i in range(len(self.procs))]

    def stop(self) -> list[int | None]:
        """SIGTERM each; return what each had exited with before it was asked to stop."""
        before = [proc.poll() for proc in self.procs]
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return before


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run_jobs(fleet: Fleet, count: int) -> list[str]:
    """Migrate, enqueue `count` jobs, and start two workers."""
    app = outage_worker.build(fleet.url, str(fleet.folder / "producer.log"))
    app.store.migrate()
    task = app.tasks[outage_worker.TASK]
    ids = app.enqueue_many(task.spec(n) for n in range(count))
    app.close()
    fleet.start(2)
    wait_until(lambda: len(fleet.events("ok")) >= count // 4, 60, "a quarter of the jobs")
    return ids


def check_outcome(fleet: Fleet, ids: list[str], ready: float) -> list[str]:
    """Every job succeeded and ran to its end once, no worker exited, work resumed
    within RESUME_WITHIN of `ready`; return the workers' logs."""
    wait_until(lambda: len(fleet.events("ok")) >= len(ids), 60, "every job to run")
    checker = outage_worker.build(fleet.url, str(fleet.folder / "checker.log"))
    succeeded = (outage_worker.QUEUE, JobState.SUCCEEDED)
    wait_until(
        lambda: checker.store.count_states().get(succeeded) == len(ids),
        30,
        "every outcome to be written",
    )
    states = checker.store.count_states()
    checker.close()
    exits = fleet.stop()
    assert exits == [None] * len(exits), "a worker exited during the outage"
    assert states == {succeeded: len(ids)}
    finished = Counter(job for job, _ in fleet.events("ok"))
    assert set(finished) == set(ids)
    assert max(finished.values()) == 1, "a job ran to its end twice"
    resumed = min(at for _, at in fleet.events("start") if at >= ready) - ready
    assert resumed <= RESUME_WITHIN, f"work resumed {resumed:.2f} s after the store was back"
    return fleet.logs()
