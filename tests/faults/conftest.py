"""Fault tests run real `deadletter` worker processes on each backend (tests.faults.worker)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from tests.contract.conftest import store_url
from tests.faults import checker, journal, worker
from tests.support.netns import inside

__all__ = ["store_url"]

ROOT = Path(__file__).resolve().parents[2]


class Fleet:
    """Worker processes of one test. The test says which ends it caused (its own kills,
    jobs that kill their worker); any other exit is a finding of the checker."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.journal = folder / "journal.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ended_by_test: set[int] = set()
        # When the test killed or froze each process, by pid (checker.START_WINDOW).
        self.faulted: defaultdict[int, list[float]] = defaultdict(list)

    def start(
        self, role: str = "steady", lease: float = 1.0, netns: str | None = None
    ) -> subprocess.Popen[bytes]:
        """A worker, in network namespace `netns` if given (`ip netns exec` runs the
        worker itself, so the pid is the worker's)."""
        command = [sys.executable, "-m", "tests.faults.worker", self.url, str(self.folder)]
        proc = subprocess.Popen([*inside(netns), *command, role, str(lease)], cwd=ROOT)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.ended_by_test.add(proc.pid)
        self.faulted[proc.pid].append(time.time())
        proc.kill()
        proc.wait(10)

    def freeze(self, proc: subprocess.Popen[bytes], seconds: float) -> None:
        """SIGSTOP `proc` for `seconds`, then SIGCONT."""
        self.faulted[proc.pid].append(time.time())
        proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        proc.send_signal(signal.SIGCONT)

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)

    def exited(self, killers: set[str]) -> list[str]:
        """Workers that ended on their own: not ended by the test, not a burst worker done
        (exit 0), and not killed by one of the `killers` jobs it was running."""
        killed_by_job = {e.pid for e in journal.read(self.journal) if e.job_id in killers}
        return [
            f"{proc.pid} exit {proc.returncode}"
            for proc in self.procs
            if proc.returncode not in (None, 0)
            and proc.pid not in self.ended_by_test
            and proc.pid not in killed_by_job
        ]

    def drain(self, timeout: float = 60) -> None:
        """Burst workers, one after the other, until one ends having found nothing left
        (a job that kills its worker ends one first, each of its attempts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.start("burst")
            try:
                proc.wait(max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                break
            if proc.returncode == 0:
                return
        raise AssertionError(f"burst workers did not drain the queue in {timeout:g}s")

    def check(self, app: App, ids: list[str], killers: set[str]) -> checker.Findings:
        return checker.check(
            app.store,
            ids,
            [worker.DLQ],
            self.journal,
            exited=self.exited(killers),
            faulted=self._faulted(killers),
        )

    def _faulted(self, killers: set[str]) -> dict[int, list[float]]:
        """When each worker was killed or frozen: by the test, or by one of the `killers`
        jobs (the moment it started, as it journalled; it ends its worker at once)."""
        faulted = defaultdict(list, {pid: list(times) for pid, times in self.faulted.items()})
        for entry in journal.read(self.journal):
            if entry.job_id in killers and entry.event == "start":
                faulted[entry.pid].append(entry.at)
        return faulted


@pytest.fixture
def fleet(store_url: str, tmp_path: Path) -> Iterator[Fleet]:
    group = Fleet(store_url, tmp_path)
    yield group
    group.kill_all()
