"""RQ: its failures dead-lettered here, and re-driven onto their queue.

Either start the worker with deadletter's exception handler (the deadletter app is
then built from deadletter.toml / DEADLETTER_* settings in the worker's process):

    rq worker --exception-handler deadletter.integrations.rq.exception_handler QUEUE

or, where you build the worker yourself: `capture(worker, dl_app)`.

The handler runs for every failed run, before RQ decides: if the job has retries left
(`Retry(max=...)`), the attempt is recorded and RQ retries; if not, RQ moves it to its
failed job registry and it is dead-lettered here. A re-driven job carries an
`on_success` callback, so that its success comes back; a first run carries nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

try:
    from redis import Redis
    from rq import Callback, Queue, Retry
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.results import Result
    from rq.worker import BaseWorker
except ImportError as exc:  # an optional extra
    raise ImportError("deadletter.integrations.rq needs RQ: pip install deadletter[rq]") from exc

from deadletter.app import App
from deadletter.integrations import imports
from deadletter.integrations.core import (
    JOB_KEY,
    Failed,
    Recorder,
    add_sender,
    arguments,
    capture_safely,
)
from deadletter.integrations.imports import Held, ImportReport, Run
from deadletter.model import Origin, Payload
from deadletter.worker.tracebacks import format_failure

SYSTEM = "rq"
# Failed runs of the job so far, kept in its meta: RQ counts retries down, not up, and
# a re-drive needs the job's own retry budget back.
FAILURES_KEY = "deadletter_failures"
SUCCESS_CALLBACK = "deadletter.integrations.rq.redrive_succeeded"


def capture(worker: BaseWorker, dl_app: App) -> Recorder:
    """Record `worker`'s failures in `dl_app`, and let `dl_app`'s workers re-drive them."""
    recorder = register(dl_app, worker.connection)
    handler = functools.partial(_handle, recorder)
    worker.push_exc_handler(handler)  # type: ignore[no-untyped-call]  # unannotated in RQ 3.0
    return recorder


def exception_handler(
    job: Job, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> bool:
    """For `rq worker --exception-handler`: the deadletter app from settings."""
    _handle(_default_recorder(), job, exc_type, exc, tb)
    return True  # RQ's other handlers (its failed job registry) run as before


def redrive_succeeded(job: Job, connection: Redis, result: Any) -> None:
    """The `on_success` callback of a re-driven job: its job here turns succeeded."""
    capture_safely("an RQ success", _default_recorder().succeeded, job.id)


def _handle(
    recorder: Recorder,
    job: Job,
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
) -> bool:
    failures = int(job.meta.get(FAILURES_KEY, 0)) + 1
    job.meta[FAILURES_KEY] = failures  # saved with the job by RQ's own failure handling
    failed = _failed(job, exc, failures)
    if job.should_retry:
        capture_safely("an RQ retry", recorder.attempt_failed, failed)
    else:
        reason = f"RQ gave up after {failures} attempt(s) (retries left: 0)"
        capture_safely("an RQ failure", recorder.gave_up, failed, reason)
    return True


def _failed(job: Job, exc: BaseException, failures: int) -> Failed:
    now = time.time()
    started = job.started_at
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=UTC)  # RQ stores UTC
    return Failed(
        message_id=job.id,
        origin=_origin(job, failures),
        exception=exc,
        traceback=format_failure(exc),
        started_at=started.timestamp() if isinstance(started, datetime) else now,
        ended_at=now,
        worker=str(job.worker_name or "rq"),
    )


def _origin(job: Job, failures: int) -> Origin:
    """Where the job came from, with what a re-drive needs: its retries and timeout."""
    return Origin(
        system=SYSTEM,
        queue=job.origin,
        task=str(job.func_name),
        original_id=job.id,
        arguments=arguments(job.args, job.kwargs),
        options={
            "retry_max": failures - 1,
            "retry_intervals": list(job.retry_intervals or []),
            "timeout": job.timeout,
        },
    )


def import_failures(dl_app: App, *, url: str, queues: Sequence[str], dry_run: bool) -> ImportReport:
    """`deadletter import rq`: adopt the jobs of the queues' failed job registries."""
    connection = Redis.from_url(url)
    try:
        held = (failure for queue in queues for failure in held_failures(connection, queue))
        return imports.import_failures(Recorder(dl_app, SYSTEM), held, dry_run=dry_run)
    finally:
        connection.close()


def held_failures(connection: Redis, queue_name: str) -> Iterator[Held]:
    """The jobs of `queue_name`'s failed job registry, for `deadletter import rq`. RQ
    keeps a result for the last failed run only: that is the history imported."""
    registry = Queue(queue_name, connection=connection).failed_job_registry
    for job_id in registry.get_job_ids():
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue  # expired between the listing and the fetch
        runs = [
            Run(
                result.exc_string or "", result.created_at.timestamp(), worker=job.worker_name or ""
            )
            for result in reversed(job.results())
            if result.type is Result.Type.FAILED
        ]
        if runs:
            failures = len(runs)
            yield Held(
                job.id,
                _failed(job, Exception(), failures).origin,
                runs,
                "in RQ's failed job registry",
            )


class RqSender:
    """Re-drives with `Queue.enqueue` on the job's own queue, with its retry budget."""

    system = SYSTEM

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def send(self, origin: Origin, message_id: str, payload: Payload, job_id: str) -> None:
        options = origin.options
        retry_max = int(options.get("retry_max") or 0)
        intervals = options.get("retry_intervals") or 0
        Queue(origin.queue, connection=self.connection).enqueue(
            origin.task,
            args=payload.get("args", []),
            kwargs=payload.get("kwargs", {}),
            job_id=message_id,
            meta={JOB_KEY: job_id},
            retry=Retry(max=retry_max, interval=intervals) if retry_max else None,
            job_timeout=options.get("timeout"),
            on_success=Callback(SUCCESS_CALLBACK),
        )

    def already_sent(self, origin: Origin, message_id: str) -> bool:
        return bool(Job.exists(message_id, connection=self.connection))


_recorders: dict[str, Recorder] = {}


def register(dl_app: App, connection: Redis) -> Recorder:
    """Let `dl_app`'s workers handle RQ's dead letters and re-drive them on `connection`;
    the recorder is also the one this process's handler and callbacks use."""
    recorder = Recorder(dl_app, SYSTEM)
    add_sender(dl_app, RqSender(connection))
    _recorders["current"] = recorder
    return recorder


def _default_recorder() -> Recorder:
    """The recorder of this process: the one `capture` made, or one on the settings'
    app, built once (RQ names its handlers and callbacks by import path)."""
    recorder = _recorders.get("current")
    if recorder is None:
        recorder = Recorder(App(), SYSTEM)
        _recorders["current"] = recorder
    return recorder
