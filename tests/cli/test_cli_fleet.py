"""Pausing a queue and seeing the live workers with a real `deadletter worker` process,
on every backend: the pause takes effect while the worker runs, a SIGKILLed worker
drops out of `deadletter workers`, and `deadletter check` says when work waits on a
queue that nobody consumes (issue 12)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import load_settings
from deadletter.model import JobState
from tests.cli.conftest import Cli
from tests.support.operator import Q

NAPS = f"""
import time
from pathlib import Path
from typing import Any

from deadletter import App

app = App()


@app.task(name="naps.nap", queue="{Q}")
def nap(seconds: float, marker: str) -> None:
    Path(marker).touch()
    time.sleep(seconds)
"""

# Heartbeats often, and gone soon after they stop, so that a test waits seconds.
FAST_PRESENCE = """
[worker]
poll_interval = 0.05
heartbeat_seconds = 0.2
gone_after_seconds = 2
"""


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"waited 60 s for {what}"
        time.sleep(0.05)


@pytest.fixture
def naps(cli: Cli) -> Iterator[App]:
    """The app of `naps.py` in the command's folder, for the test to enqueue naps with."""
    with (cli.cwd / "deadletter.toml").open("a") as config:
        config.write(FAST_PRESENCE)
    (cli.cwd / "naps.py").write_text(NAPS)
    app = App(load_settings(cwd=cli.cwd, environ={}))
    app.task(name="naps.nap", queue=Q)(lambda seconds, marker: None)
    yield app
    app.close()


@pytest.fixture
def start_worker(cli: Cli) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        worker = cli.popen("worker", "--app", "naps:app", "--concurrency", "1")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()


def enqueue(app: App, folder: Path, seconds: float, count: int, start: int = 0) -> list[Path]:
    markers = [folder / f"started-{n}" for n in range(start, start + count)]
    for marker in markers:
        app.tasks["naps.nap"].enqueue(seconds, str(marker))
    return markers


def states(app: App) -> dict[JobState, int]:
    return {state: n for (queue, state), n in app.store.count_states().items() if queue == Q}


def test_a_pause_stops_a_running_worker_taking_jobs_until_the_resume(
    cli: Cli, naps: App, start_worker: Callable[[], subprocess.Popen[str]]
) -> None:
    markers = enqueue(naps, cli.cwd, 0.3, 8)
    worker = start_worker()
    wait_until(lambda: markers[0].exists(), "the first job to start")

    said = cli.ok("queue", "pause", Q, "--reason", "incident 7")

    assert f"queue {Q}: paused" in said
    wait_until(lambda: JobState.RUNNING not in states(naps), "running jobs to finish")
    ran = sum(marker.exists() for marker in markers)
    more = enqueue(naps, cli.cwd, 0.3, 1, start=8)  # enqueueing goes on
    time.sleep(1.5)  # a worker that ignored the pause would start jobs meanwhile
    assert sum(marker.exists() for marker in [*markers, *more]) == ran < len(markers)
    assert states(naps) == {JobState.SUCCEEDED: ran, JobState.QUEUED: 9 - ran}
    assert {job.attempts for job in naps.store.list_jobs(queue=Q, state=JobState.QUEUED)} == {0}
    [paused] = cli.json("stats")["paused_queues"]
    assert (paused["queue"], paused["reason"], paused["paused_by"]) == (
        Q,
        "incident 7",
        "cli:tester",
    )
    listed = {item["queue"]: item for item in cli.json("queue", "list")["queues"]}
    assert listed[Q]["paused"] and listed[Q]["waiting"] == 9 - ran

    assert f"queue {Q}: resumed" in cli.ok("queue", "resume", Q, "--reason", "fixed")
    wait_until(lambda: states(naps) == {JobState.SUCCEEDED: 9}, "every job to run")
    assert worker.poll() is None


def test_a_worker_shows_with_its_running_job_and_a_killed_one_drops_out(
    cli: Cli, naps: App, start_worker: Callable[[], subprocess.Popen[str]]
) -> None:
    [marker] = enqueue(naps, cli.cwd, 3600, 1)
    worker = start_worker()
    wait_until(marker.exists, "the job to start")

    def workers() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = cli.json("workers")["workers"]
        return found

    wait_until(lambda: bool(workers() and workers()[0]["running"]), "the running job to show")
    [seen] = workers()
    assert (seen["pid"], seen["queues"], seen["concurrency"]) == (worker.pid, [Q, f"{Q}-dlq"], 1)
    [job] = seen["running"]
    assert job["task"] == "naps.nap" and job["running_for"] >= 0
    assert cli.run("check").returncode == 0
    table = cli.ok("workers")
    assert f"{worker.pid}" in table and "naps.nap" in table and "1 live worker" in table

    worker.send_signal(signal.SIGKILL)
    worker.wait()
    wait_until(lambda: workers() == [], "the killed worker to drop out")
    enqueue(naps, cli.cwd, 0, 1, start=1)
    checked = cli.run("check")
    assert checked.returncode == 4, checked.stdout + checked.stderr
    assert f"queue {Q}: 1 waiting and no live worker consumes it" in checked.stdout
    as_json = cli.run("check", "--json")
    assert as_json.returncode == 4
    assert json.loads(as_json.stdout)["unconsumed"] == [{"queue": Q, "waiting": 1}]
