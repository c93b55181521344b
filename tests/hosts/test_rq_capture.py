"""RQ with a worker built in code (`capture(worker, dl_app)`, not the exception handler's
command-line option): its failures are dead-lettered here with RQ's attempts."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue, Retry, SimpleWorker

from deadletter.app import App
from deadletter.integrations import rq as rq_capture
from deadletter.model import JobState
from tests.hosts.conftest import Names, jobs_in


def test_a_worker_built_in_code_is_captured(
    redis_url: str, names: Names, dl_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DL_TEST_PREFIX", names.prefix)  # where failing.work looks
    monkeypatch.setenv("DL_TEST_REDIS", redis_url)
    connection = Redis.from_url(redis_url)
    queue = Queue(names.queue, connection=connection)
    retried = queue.enqueue("tests.hosts.failing.work", "500", f"{names.prefix}-a", retry=Retry(1))
    once = queue.enqueue("tests.hosts.failing.work", "404", f"{names.prefix}-b")
    worker = SimpleWorker([queue], connection=connection)  # runs its jobs in this process
    rq_capture.capture(worker, dl_app)
    worker.work(burst=True)
    dead = {job.payload["args"][1]: job for job in jobs_in(dl_app, "rq", JobState.DEAD_LETTERED)}
    assert {key: job.attempts for key, job in dead.items()} == {
        retried.args[1]: 2,
        once.args[1]: 1,
    }
    connection.close()
