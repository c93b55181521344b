"""Fixtures for the host systems' tests: real Redis and RabbitMQ, real host workers.

Every test has its own queue names and Redis key prefix (`names`), so that runs in
parallel do not see each other's messages; what a test declares it deletes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.model import Job, JobState
from tests.support.required import missing

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
ROOT = Path(__file__).resolve().parents[2]


def _require(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        missing(f"{what} is not reachable on {host}:{port} ({exc}); .ci/run starts it")


@pytest.fixture
def redis_url() -> str:
    _require("127.0.0.1", 6379, "Redis")
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    _require("127.0.0.1", 5672, "RabbitMQ")
    return AMQP_URL


@pytest.fixture
def broker_url(request: pytest.FixtureRequest) -> str:
    """Parametrize with indirect=["broker_url"] and "redis" or "amqp"."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@dataclass(frozen=True)
class Names:
    """A test's own queue and key prefix."""

    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}-q"


@pytest.fixture
def names(redis_url: str) -> Iterator[Names]:
    chosen = Names(f"dlt-{uuid.uuid4().hex[:10]}")
    yield chosen
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"*{chosen.prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'deadletter.db'}"


@pytest.fixture
def dl_app(database_url: str, tmp_path: Path) -> Iterator[App]:
    """deadletter's side: the DLQ handler and the re-drive worker, on the test's database."""
    settings = settings_from_mapping(
        {
            "database_url": database_url,
            "blob_url": str(tmp_path / "blobs"),
            "spool_dir": str(tmp_path / "spool"),
            "worker": {"poll_interval": 0.05},
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "queues": {"deadletter.redrive": {"backoff_base": 0.2, "max_retries": 5}},
        }
    )
    app = App(settings)
    app.store.migrate()
    yield app
    app.close()


@pytest.fixture
def host_env(database_url: str, tmp_path: Path, names: Names, redis_url: str) -> dict[str, str]:
    """The environment of a host's worker process: where deadletter and the test live."""
    return {
        **os.environ,
        # the tests, and this checkout's deadletter (not another the venv may point at)
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "PYTHONUNBUFFERED": "1",  # the tests read the worker's log as it runs
        "DEADLETTER_DATABASE_URL": database_url,
        "DEADLETTER_SPOOL_DIR": str(tmp_path / "spool"),
        "DL_TEST_PREFIX": names.prefix,
        "DL_TEST_QUEUE": names.queue,
        "DL_TEST_REDIS": redis_url,
    }


class HostWorker:
    """A host system's own worker command, in its own process group."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        """Runs in the folder of its log: deadletter's defaults (`.deadletter/`) land
        there, never in the working tree."""
        self.log = log
        self._handle = log.open("ab")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=log.parent,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """SIGTERM to the host's main process (a warm shutdown in every host: it stops
        the processes it forked itself, which then save their coverage; Celery's pool
        processes die at once of a SIGTERM of their own), then SIGKILL to the whole group
        past 10 seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._handle.close()


@pytest.fixture
def start_host_worker(
    host_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., HostWorker]]:
    started: list[HostWorker] = []

    def start(*command: str, env: dict[str, str] | None = None) -> HostWorker:
        worker = HostWorker(
            [sys.executable, "-m", *command],
            {**host_env, **(env or {})},
            tmp_path / f"host-worker-{len(started)}.log",
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tail}")


def jobs_in(app: App, queue: str, state: JobState) -> list[Job]:
    return [job for job in app.store.list_jobs(queue=queue, limit=500) if job.status is state]


def healthy(redis_url: str, names: Names, key: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set(f"{names.prefix}:healthy:{key}", 1)
    client.close()
