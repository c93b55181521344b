"""A real `deadletter worker` process: what Ctrl-C says, a second Ctrl-C, the exit code,
that no job is lost or charged on the way out, and what its last line counts."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.config import load_settings
from deadletter.model import JobState
from tests.cli.conftest import COMMAND, command_env

NAPS = """
import time
from pathlib import Path

from deadletter import App

app = App()


@app.task(name="naps.nap", queue="naps")
def nap(seconds: float, marker: str) -> None:
    Path(marker).touch()
    time.sleep(seconds)


@app.task(name="naps.fail", queue="naps")
def fail() -> None:
    raise ValueError("no nap today")
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "deadletter.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "deadletter.db"}"\n'
        f'blob_url = "{tmp_path / "blobs"}"\n'
        f'[dlq]\nlog_file = "{tmp_path / "dlq.log"}"\n'
        "[worker]\ngrace_seconds = 60\nlease_seconds = 60\npoll_interval = 0.05\n"
        "[queues.naps]\nmax_retries = 0\n"
    )
    (tmp_path / "naps.py").write_text(NAPS)
    return tmp_path


@pytest.fixture
def app(folder: Path) -> Iterator[App]:
    application = App(load_settings(cwd=folder, environ={}))
    application.task(name="naps.nap", queue="naps")(lambda seconds, marker: None)
    application.task(name="naps.fail", queue="naps")(lambda: None)
    yield application
    application.close()


def start_worker(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, "worker", "--app", "naps:app", "--concurrency", "2"],
        cwd=folder,
        env=command_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(markers: list[Path], worker: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not all(marker.exists() for marker in markers):
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the jobs never started"
        time.sleep(0.05)


def enqueue_naps(app: App, folder: Path, seconds: float, count: int) -> list[Path]:
    markers = [folder / f"started-{n}" for n in range(count)]
    for marker in markers:
        app.tasks["naps.nap"].enqueue(seconds, str(marker))
    return markers


def test_a_second_ctrl_c_stops_now_and_loses_nothing(app: App, folder: Path) -> None:
    markers = enqueue_naps(app, folder, 3600, 2)
    worker = start_worker(folder)
    try:
        wait_for(markers, worker)
        assert worker.stderr is not None
        worker.send_signal(signal.SIGINT)
        said = worker.stderr.readline()  # at once, not after the grace period
        assert said.startswith("stopping: waiting up to 60s for 2 running jobs;"), said
        assert "Ctrl-C again to stop now" in said
        worker.send_signal(signal.SIGINT)
        printed, rest = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 130, rest
    assert rest.startswith("stopping now: giving back 2 running jobs")
    assert "stopped: jobs: 0 succeeded" in printed
    # Given back as if never leased: queued again, no attempt charged, ready to run.
    jobs = app.store.list_jobs(queue="naps", limit=10)
    assert [(job.status, job.attempts) for job in jobs] == [(JobState.QUEUED, 0)] * 2


def test_one_ctrl_c_lets_running_jobs_finish(app: App, folder: Path) -> None:
    markers = enqueue_naps(app, folder, 1.0, 1)
    worker = start_worker(folder)
    try:
        wait_for(markers, worker)
        worker.send_signal(signal.SIGINT)
        printed, said = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 130, said
    assert said.startswith("stopping: waiting up to 60s for 1 running job;")
    assert "stopped: jobs: 1 succeeded" in printed
    [job] = app.store.list_jobs(queue="naps", limit=10)
    assert job.status == JobState.SUCCEEDED


def test_sigterm_is_a_normal_stop(app: App, folder: Path) -> None:
    worker = start_worker(folder)
    try:
        assert worker.stdout is not None
        assert "consuming naps" in worker.stdout.readline()
        worker.send_signal(signal.SIGTERM)
        _, said = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, said
    assert "waiting up to 60s for 0 running jobs" in said


def test_its_last_line_counts_jobs_and_dead_letters_apart(app: App, folder: Path) -> None:
    for _ in range(2):
        app.tasks["naps.fail"].enqueue()
    done = subprocess.run(
        [*COMMAND, "worker", "--app", "naps:app", "--burst"],
        cwd=folder,
        env={**command_env(), "COLUMNS": "80"},  # a line of a log stays one line
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The handler's two letters are not two jobs that succeeded.
    assert done.stdout.splitlines()[-1] == (
        "stopped: jobs: 0 succeeded, 0 retried, 2 dead-lettered, 0 reclaimed;"
        " dead letters: 2 handled, 0 to try again, 0 parked"
    )
