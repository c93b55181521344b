"""The story every host system's test tells, with its own worker and broker: a task
failing in every class is dead-lettered here with the host's attempts, handled like a
native job, re-driven from the CLI (once to success, once to a new failure), and an
abandoned one sends nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from deadletter.app import App
from deadletter.model import ErrorClass, JobState
from tests.hosts import failing
from tests.hosts.conftest import Names, healthy, jobs_in, wait_for
from tests.support.operator import recovery_status, table

Send = Callable[[str, str], None]


def cli(app: App, *args: str) -> dict[str, object]:
    """`deadletter ARGS --json` in its own process, as an operator runs it."""
    loaded: dict[str, object] = json.loads(cli_text(app, *args, "--json"))
    return loaded


def cli_text(app: App, *args: str) -> str:
    """What `deadletter ARGS` prints, run in its own process on `app`'s settings."""
    command = [str(Path(sys.executable).with_name("deadletter")), *args]
    env = {
        **os.environ,
        "DEADLETTER_DATABASE_URL": app.settings.database_url,
        "DEADLETTER_BLOB_URL": app.settings.blob_url,
        "DEADLETTER_SPOOL_DIR": app.settings.spool_dir,
        "DEADLETTER_DLQ_LOG_FILE": app.settings.dlq.log_file,
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fail_every_class(app: App, system: str, send: Send, names: Names, log: Path) -> dict[str, str]:
    """Send a task of each failing kind; wait until the host gave up on all of them and the
    DLQ handler handled them; the job id of each kind."""
    for kind in failing.EXPECTED:
        send(kind, f"{names.prefix}-{kind}")
    wait_for(
        lambda: len(jobs_in(app, system, JobState.DEAD_LETTERED)) == len(failing.EXPECTED),
        timeout=60,
        what=f"{len(failing.EXPECTED)} {system} jobs dead-lettered",
        log=log,
    )
    app.worker(dlq_only=True).run(burst=True)
    jobs = jobs_in(app, system, JobState.FAILED)
    return {job.payload["args"][0]: job.id for job in jobs}


def check_history_and_handling(
    app: App, system: str, names: Names, jobs: dict[str, str], *, task: str
) -> None:
    """Attempts as the host made them; classified and routed as a native job would be."""
    assert sorted(jobs) == sorted(failing.EXPECTED)
    for kind, (error_class, attempts) in failing.EXPECTED.items():
        job = app.store.get_job(jobs[kind])
        assert job is not None and job.attempts == attempts, (kind, job)
        history = app.store.attempts(job.id)
        assert [a.number for a in history] == list(range(1, attempts + 1)), kind
        assert all(a.traceback and a.worker and a.ended_at >= a.started_at for a in history)
        if kind.isdigit():
            assert {a.http_status for a in history} == {int(kind)}, kind
        [(found_class, retry_count)] = table(
            app, "SELECT error_class, retry_count FROM dlq_failures WHERE job_id = ?", job.id
        )
        assert (found_class, retry_count) == (error_class.value, attempts - 1), kind
        origin = app.store.origin(job.id)
        assert origin is not None
        assert (origin.system, origin.queue, origin.task) == (system, names.queue, task)
        assert origin.arguments == {"args": [kind, f"{names.prefix}-{kind}"], "kwargs": {}}
        routed = recovery_status(app, job.id)
        assert routed == ("pending" if error_class is ErrorClass.RECOVERABLE else None), kind
    [(reviews,)] = table(app, "SELECT count(*) FROM dlq_review_log")
    assert reviews == 1  # the unexpected exception, UNKNOWN


def redrive_from_the_cli(app: App, names: Names, jobs: dict[str, str], redis_url: str) -> None:
    """500 is fixed and recovers in its host; 502 fails again there; 404 is abandoned."""
    healthy(redis_url, names, f"{names.prefix}-500")
    shown = cli(app, "show", jobs["500"])
    assert json.dumps(shown).count(names.queue) >= 1 and "origin" in shown
    for kind in ("500", "502"):
        assert cli(app, "requeue", jobs[kind], "--reason", "partner fixed")["outcome"] == "requeued"
    assert cli(app, "abandon", jobs["404"], "--reason", "gone")["outcome"] == "abandoned"
    app.worker(queues=["deadletter.redrive"], dlq=False).run(burst=True)
    sent = table(app, "SELECT job_id FROM host_messages WHERE sent_at IS NOT NULL")
    assert sorted(job for (job,) in sent) == sorted([jobs["500"], jobs["502"]])
    wait_for(
        lambda: recovery_status(app, jobs["500"]) == "recovered",
        timeout=30,
        what="the re-driven 500 job to succeed in its host",
    )
    wait_for(
        lambda: _status(app, jobs["502"]) is JobState.DEAD_LETTERED,
        timeout=30,
        what="the re-driven 502 job to fail again in its host",
    )
    app.worker(dlq_only=True).run(burst=True)
    again = app.store.get_job(jobs["502"])
    assert again is not None and again.status is JobState.FAILED and again.attempts == 6
    assert recovery_status(app, jobs["502"]) == "pending"
    [(count,)] = table(app, "SELECT count(*) FROM dlq_failures WHERE job_id = ?", jobs["502"])
    assert count == 2  # a new failure of the same job
    assert recovery_status(app, jobs["404"]) == "abandoned"


def _status(app: App, job_id: str) -> JobState | None:
    job = app.store.get_job(job_id)
    return job.status if job else None
