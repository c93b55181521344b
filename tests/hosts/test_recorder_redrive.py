"""What every host integration shares, at its edges: a spool left by a worker that has
gone, a spool that cannot be written, and re-drives that have nothing to send, no sender,
or were sent already; real Celery and RQ senders on Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from redis import Redis
from rq import Queue

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.integrations import rq as rq_capture
from deadletter.integrations.celery import capture
from deadletter.integrations.core import (
    Failed,
    NoSender,
    Recorder,
    Redrive,
    add_sender,
    capture_safely,
)
from deadletter.integrations.rq import RqSender
from deadletter.model import HostAttempt, HostGaveUp, HostSucceeded, JobState, Origin
from deadletter.ops.recovery import requeue
from tests.hosts import failing
from tests.hosts.conftest import Names, jobs_in


def failed(message_id: str) -> Failed:
    origin = Origin("rq", "emails", "mail.send", message_id, {"args": [], "kwargs": {}})
    exc = failing.HTTPError(503, "unavailable")
    return Failed(message_id, origin, exc, "Traceback ...", time.time() - 1, time.time())


def unreachable_app(tmp_path: Path, spool_dir: Path) -> App:
    """An app whose SQLite database cannot be opened: its folder is a file."""
    (tmp_path / "gone").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'gone' / 'deadletter.db'}"
    return App(settings_from_mapping({"database_url": url, "spool_dir": str(spool_dir)}))


def test_a_spool_left_by_a_worker_gone_is_written_before_the_next_failure(
    dl_app: App, tmp_path: Path
) -> None:
    """A host worker spooled an attempt while the database was away, and was restarted:
    the next failure its successor records writes the spooled one first."""
    spool_dir = Path(dl_app.settings.spool_dir)
    gone = unreachable_app(tmp_path, spool_dir)
    Recorder(gone, "rq").attempt_failed(failed("m1"))
    assert len(list((spool_dir / "rq").glob("*.json"))) == 1
    Recorder(dl_app, "rq").gave_up(failed("m1"), "RQ gave up after 2 attempt(s)")
    [job] = jobs_in(dl_app, "rq", JobState.DEAD_LETTERED)
    assert [attempt.number for attempt in dl_app.store.attempts(job.id)] == [1, 2]
    assert list((spool_dir / "rq").glob("*.json")) == []
    gone.close()


def test_a_failure_that_can_be_neither_written_nor_spooled_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool-file"
    spool_dir.write_text("not a folder")  # the spool cannot be made either
    app = unreachable_app(tmp_path, spool_dir)
    recorder = Recorder(app, "rq")
    with caplog.at_level(logging.ERROR, logger="deadletter.integrations"):
        capture_safely("an RQ retry", recorder.attempt_failed, failed("m1"))
    assert "could not record an RQ retry; the host carries on" in caplog.text
    app.close()


@pytest.fixture
def connection(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def requeued(app: App, system: str, names: Names) -> str:
    """A job of `system` dead-lettered here, handled, and requeued by an operator."""
    key = f"{names.prefix}-{system}"
    origin = Origin(system, names.queue, "tests.hosts.failing.work", key, {"args": ["500", key]})
    attempt = HostAttempt(
        f"e-{key}", system, key, 1.0, 2.0, "w", "HTTPError", "HTTP 500", "", 500, None, None
    )
    gave_up = HostGaveUp(attempt, origin, system, f"{system}-dlq", 3, "gave up")
    [job_id] = app.store.record_host_events([gave_up], now=3.0)
    app.worker(dlq_only=True).run(burst=True)
    assert requeue(app.store, job_id, actor="ana", policy=app.policy, payload_limit=1 << 20).done
    return job_id


def test_a_redrive_recorded_as_sent_sends_nothing_again(
    names: Names, dl_app: App, connection: Redis
) -> None:
    rq_capture.register(dl_app, connection)
    job_id = requeued(dl_app, "rq", names)
    redrive = dl_app.tasks["deadletter.redrive"]
    redrive(job_id, 1)
    redrive(job_id, 1)  # the re-drive job run twice (its worker lost its lease)
    assert Queue(names.queue, connection=connection).count == 1


def test_a_redrive_of_a_job_no_longer_queued_sends_nothing(
    names: Names, dl_app: App, connection: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent, and succeeded in RQ; the re-drive job then runs again: nothing to send."""
    rq_capture.register(dl_app, connection)
    job_id = requeued(dl_app, "rq", names)
    redrive = dl_app.tasks["deadletter.redrive"]
    redrive(job_id, 1)
    success = HostSucceeded("e-ok", "rq", f"{names.prefix}-rq-redrive-1", time.time())
    dl_app.store.record_host_events([success], now=time.time())
    with caplog.at_level(logging.INFO, logger="deadletter.integrations"):
        redrive(job_id, 1)
        redrive("no-such-job", 1)
    assert caplog.text.count("nothing to send (the job is not queued)") == 2
    assert Queue(names.queue, connection=connection).count == 1  # the first send only


def test_a_redrive_to_a_system_without_a_sender_names_the_capture_to_call(
    names: Names, dl_app: App, connection: Redis
) -> None:
    rq_capture.register(dl_app, connection)  # RQ's sender; none for Dramatiq
    Recorder(dl_app, "dramatiq")  # Dramatiq's failures are recorded (by its own workers)
    job_id = requeued(dl_app, "dramatiq", names)
    with pytest.raises(NoSender, match=r"deadletter.integrations.dramatiq.capture\(...\)"):
        dl_app.tasks["deadletter.redrive"](job_id, 1)


def test_one_redrive_task_sends_to_every_system_captured(
    redis_url: str, dl_app: App, connection: Redis
) -> None:
    rq_capture.register(dl_app, connection)
    celery_app = Celery("dltest-both", broker=redis_url)
    capture(celery_app, dl_app)
    redrive = dl_app.tasks["deadletter.redrive"].function
    assert isinstance(redrive, Redrive) and sorted(redrive.senders) == ["celery", "rq"]
    celery_app.close()


def test_a_task_of_its_own_under_the_redrive_name_is_refused(
    dl_app: App, connection: Redis
) -> None:
    @dl_app.task(name="deadletter.redrive")
    def redrive(job_id: str) -> None: ...

    with pytest.raises(TypeError, match="is not deadletter's re-drive"):
        add_sender(dl_app, RqSender(connection))
