"""Celery: its failures dead-lettered here, and re-driven with `send_task`.

    from deadletter.integrations.celery import capture
    capture(celery_app, dl_app)

Hooks on Celery's own signals, in the worker process that ran the task: `task_retry`
(an attempt failed and Celery retries it), `task_failure` (Celery gave up), and
`task_success` (acting only for a task that failed before or is a re-drive). The start
time of each run is noted on its request by `task_prerun`: one attribute, no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

try:
    from celery import Celery, Task, signals
    from celery.backends.base import DisabledBackend
    from celery.exceptions import Retry
except ImportError as exc:  # an optional extra
    raise ImportError(
        "deadletter.integrations.celery needs Celery: pip install deadletter[celery]"
    ) from exc

from deadletter.app import App
from deadletter.errors import InvalidRequest
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

SYSTEM = "celery"
log = logging.getLogger("deadletter.integrations.celery")
STARTED = "deadletter_started"


def capture(celery_app: Celery, dl_app: App) -> Recorder:
    """Record `celery_app`'s failures in `dl_app`, and let its workers re-drive them."""
    recorder = Recorder(dl_app, SYSTEM)
    hooks = _Hooks(celery_app, recorder)
    signals.task_prerun.connect(hooks.prerun, weak=False)
    signals.task_retry.connect(hooks.retry, weak=False)
    signals.task_failure.connect(hooks.failure, weak=False)
    signals.task_success.connect(hooks.success, weak=False)
    add_sender(dl_app, CelerySender(celery_app))
    return recorder


class _Hooks:
    def __init__(self, celery_app: Celery, recorder: Recorder) -> None:
        self.celery_app = celery_app
        self.recorder = recorder

    def prerun(self, sender: Task | None = None, **_: Any) -> None:
        if sender is not None and sender.app is self.celery_app:
            setattr(sender.request, STARTED, time.time())

    def retry(self, sender: Task | None = None, request: Any = None, **extra: Any) -> None:
        if sender is None or sender.app is not self.celery_app:
            return
        reason = extra.get("reason")
        exc = reason.exc if isinstance(reason, Retry) and reason.exc is not None else reason
        if isinstance(exc, BaseException):
            failed = _failed(sender, request, exc)
            capture_safely("a Celery retry", self.recorder.attempt_failed, failed)

    def failure(self, sender: Task | None = None, exception: Any = None, **_: Any) -> None:
        if sender is None or sender.app is not self.celery_app:
            return
        if isinstance(exception, BaseException):
            request = sender.request
            failed = _failed(sender, request, exception)
            capture_safely(
                "a Celery failure", self.recorder.gave_up, failed, _reason(sender, request)
            )

    def success(self, sender: Task | None = None, **_: Any) -> None:
        if sender is None or sender.app is not self.celery_app:
            return
        request = sender.request
        # A first run that succeeds costs these two look-ups and nothing else.
        if request.retries or getattr(request, JOB_KEY, None):
            capture_safely("a Celery success", self.recorder.succeeded, request.id)


def _failed(task: Task, request: Any, exc: BaseException) -> Failed:
    now = time.time()
    delivery = request.delivery_info or {}
    queue = delivery.get("routing_key") or task.app.conf.task_default_queue
    origin = Origin(
        system=SYSTEM,
        queue=str(queue),
        task=task.name,
        original_id=str(request.id),
        arguments=arguments(request.args, request.kwargs),
    )
    return Failed(
        message_id=str(request.id),
        origin=origin,
        exception=exc,
        traceback=format_failure(exc),
        started_at=getattr(request, STARTED, now),
        ended_at=now,
        worker=str(request.hostname or "celery"),
    )


def _reason(task: Task, request: Any) -> str:
    attempts = request.retries + 1
    if task.max_retries is not None and request.retries >= task.max_retries:
        return (
            f"retries exhausted after {attempts} attempts (Celery max_retries={task.max_retries})"
        )
    return f"not retried by Celery after {attempts} attempt(s)"


def import_failures(dl_app: App, *, url: str, dry_run: bool) -> ImportReport:
    """`deadletter import celery`: adopt the failed results of a Redis result backend."""
    reader = Celery("deadletter-import", backend=url)
    try:
        return imports.import_failures(
            Recorder(dl_app, SYSTEM), held_failures(reader), dry_run=dry_run
        )
    finally:
        reader.close()


def held_failures(celery_app: Celery) -> Iterator[Held]:
    """Failed results in `celery_app`'s Redis result backend, for `deadletter import
    celery`. Only results stored with `result_extended = True` name their task, queue
    and arguments, which a re-drive needs; others are skipped (and counted in the log)."""
    backend = celery_app.backend
    client = getattr(backend, "client", None)
    if client is None or not hasattr(client, "scan_iter"):
        raise InvalidRequest(
            "backend", f"cannot list the results of a {type(backend).__name__}: use Redis"
        )
    skipped = 0
    for key in client.scan_iter(match=f"{backend.task_keyprefix.decode()}*", count=500):
        raw = client.get(key)
        meta = backend.decode_result(raw) if raw else None
        if not meta or meta.get("status") != "FAILURE":
            continue
        if not meta.get("name"):
            skipped += 1
            continue
        yield _held(meta)
    if skipped:
        log.warning(
            "%d failed Celery results name no task (result_extended is off): skipped", skipped
        )


def _held(meta: dict[str, Any]) -> Held:
    task_id = str(meta["task_id"])
    done = meta.get("date_done")
    ended = datetime.fromisoformat(done).timestamp() if isinstance(done, str) else time.time()
    origin = Origin(
        system=SYSTEM,
        queue=str(meta.get("queue") or "celery"),
        task=str(meta["name"]),
        original_id=task_id,
        arguments=arguments(meta.get("args"), meta.get("kwargs")),
    )
    run = Run(str(meta.get("traceback") or ""), ended, worker=str(meta.get("worker") or ""))
    return Held(task_id, origin, [run], "a failed result in Celery's result backend")


class CelerySender:
    """Re-drives with `send_task`, to the task's own queue, under a task id of its own."""

    system = SYSTEM

    def __init__(self, celery_app: Celery) -> None:
        self.celery_app = celery_app

    def send(self, origin: Origin, message_id: str, payload: Payload, job_id: str) -> None:
        self.celery_app.send_task(
            origin.task,
            args=payload.get("args", []),
            kwargs=payload.get("kwargs", {}),
            queue=origin.queue,
            task_id=message_id,
            headers={JOB_KEY: job_id},
        )

    def already_sent(self, origin: Origin, message_id: str) -> bool:
        """Only a result backend can tell: a task it knows of has been received."""
        if isinstance(self.celery_app.backend, DisabledBackend):
            return False
        state: str = self.celery_app.AsyncResult(message_id).state
        return state != "PENDING"
