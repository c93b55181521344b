"""Celery's edges: tasks of an app that is not captured, result backends that hold more
than named failures or are not Redis, and a re-drive that Celery's results say was sent."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from redis import Redis

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.integrations.celery import CelerySender, capture, held_failures
from deadletter.model import HostAttempt, HostGaveUp, Origin
from deadletter.ops.recovery import requeue
from tests.hosts import failing
from tests.hosts.conftest import HostWorker, Names, healthy, wait_for
from tests.hosts.test_celery import celery_worker


def test_tasks_of_an_app_not_captured_record_nothing(dl_app: App) -> None:
    """Celery's signals are global: the hooks of a captured app let other apps' tasks be."""
    capture(Celery("dltest-captured"), dl_app)
    other = Celery("dltest-other")
    other.conf.task_always_eager = True  # run here, in this process

    @other.task(bind=True, max_retries=1, default_retry_delay=0)
    def flaky(self: Any) -> None:
        raise self.retry(exc=failing.HTTPError(503, "unavailable"))

    @other.task
    def fine() -> int:
        return 1

    assert flaky.apply().state == states.FAILURE  # retried once, then failed, in Celery
    assert fine.apply().get() == 1
    assert dl_app.store.list_jobs(queue="celery") == []


@pytest.fixture
def results(redis_url: str) -> Iterator[Celery]:
    """A Celery app whose results are in Redis; the test's task ids carry its prefix, so
    `names` deletes them."""
    app = Celery("dltest-results", broker=redis_url, backend=redis_url)
    yield app
    app.close()


def test_import_passes_over_results_that_are_not_named_failures(
    names: Names, results: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    backend = results.backend
    backend.store_result(f"{names.prefix}-ok", 42, states.SUCCESS)
    # A failure stored without result_extended: no task name, nothing to re-drive.
    backend.store_result(f"{names.prefix}-bare", failing.HTTPError(500, "down"), states.FAILURE)
    with caplog.at_level(logging.WARNING, logger="deadletter.integrations.celery"):
        found = [held for held in held_failures(results) if names.prefix in held.message_id]
    assert found == []
    assert "name no task (result_extended is off): skipped" in caplog.text


def test_import_from_a_backend_that_is_not_redis_is_an_operator_error(dl_app: App) -> None:
    with pytest.raises(InvalidRequest, match="use Redis"):
        list(held_failures(Celery("dltest-cache", backend="cache+memory://")))
    command = [str(Path(sys.executable).with_name("deadletter")), "import", "celery"]
    done = subprocess.run(
        [*command, "--backend", "cache+memory://"],
        env={**os.environ, "DEADLETTER_DATABASE_URL": dl_app.settings.database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "use Redis" in done.stderr and "Traceback" not in done.stderr


def test_a_redrive_run_again_after_a_crash_sends_nothing_celery_ran(
    redis_url: str,
    names: Names,
    dl_app: App,
    results: Celery,
    start_host_worker: Callable[..., HostWorker],
) -> None:
    """The re-drive's worker dies after Celery took the message and before deadletter
    recorded it as sent: Celery's result backend knows the task, nothing is sent again.
    (Celery's worker captures nothing here, so that the job stays queued for the re-run.)"""
    results.conf.task_default_queue = names.queue
    capture(results, dl_app)
    key = f"{names.prefix}-once"
    healthy(redis_url, names, key)
    origin = Origin("celery", names.queue, "hosts.work", key, {"args": ["500", key]})
    attempt = HostAttempt(
        "e-once", "celery", key, 1.0, 2.0, "w", "HTTPError", "HTTP 500: down", "", 500, None, None
    )
    [job_id] = dl_app.store.record_host_events(
        [HostGaveUp(attempt, origin, "celery", "celery-dlq", 3, "gave up")], now=3.0
    )
    dl_app.worker(dlq_only=True).run(burst=True)
    assert requeue(
        dl_app.store, job_id, actor="ana", policy=dl_app.policy, payload_limit=1 << 20
    ).done
    redrive = dl_app.tasks["deadletter.redrive"]
    sender = CelerySender(results)
    message_id = f"{key}-redrive-1"
    assert not sender.already_sent(origin, message_id)
    worker = celery_worker(
        start_host_worker, redis_url, names, DL_TEST_BACKEND=redis_url, DL_TEST_CAPTURE="0"
    )
    redrive(job_id, 1)
    wait_for(
        lambda: results.AsyncResult(message_id).state == states.SUCCESS,
        timeout=60,
        what="the re-drive to succeed in Celery",
        log=worker.log,
    )
    worker.stop()
    with dl_app.store.transaction() as execute:  # the record of the send is lost
        execute("UPDATE host_messages SET sent_at = NULL WHERE job_id = ?", (job_id,))
    assert sender.already_sent(origin, message_id)
    redrive(job_id, 1)
    broker = Redis.from_url(redis_url)
    assert broker.llen(names.queue) == 0
    broker.close()
