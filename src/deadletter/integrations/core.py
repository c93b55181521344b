"""What every host integration shares: turning a host's failure into events for the
store, the spool that keeps them while the database is away, and the re-drive job.

A host hook calls `Recorder.attempt_failed` when its host will run the message again,
`Recorder.gave_up` when it will not, and `Recorder.succeeded` when a message that failed
before (or a re-drive) succeeded. Nothing here runs for a message that succeeds first
time. A hook never raises into its host: the host's own retry and failure handling goes
on whatever happens to deadletter's database.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deadletter.app import App
from deadletter.classify import ErrorInfo, classify
from deadletter.errors import ConfigError
from deadletter.integrations.spool import Spool
from deadletter.model import (
    HostAttempt,
    HostEvent,
    HostGaveUp,
    HostSucceeded,
    JobState,
    JSONObject,
    Origin,
    Payload,
)
from deadletter.worker.retry import SECRET_MARGIN

log = logging.getLogger("deadletter.integrations")

REDRIVE_TASK = "deadletter.redrive"
REDRIVE_QUEUE = "deadletter.redrive"
# The key a re-drive's message carries (Celery header, RQ meta, Dramatiq option): the
# job it re-drives. Its presence is how a hook tells a re-drive from a first run.
JOB_KEY = "deadletter_job"
MESSAGE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Failed:
    """One failed run of a host message, as its host's hook saw it."""

    message_id: str
    origin: Origin
    exception: BaseException
    traceback: str
    started_at: float
    ended_at: float
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class Recorder:
    """Records one host system's failures in `app`'s store, or in the spool meanwhile."""

    def __init__(self, app: App, system: str, *, spool: Spool | None = None) -> None:
        self.app = app
        self.system = system
        self.spool = spool if spool is not None else Spool.for_system(app.settings, system)
        self.queue = system  # adopted jobs of a system share its queue; origin has the host's
        app.add_foreign_queue(self.queue)
        # The worker's: secrets out of what is recorded (and spooled to disk), personal
        # data kept for the operator's forensics; its memo shared with the app's.
        self.redactor = app.redactors.secrets

    def attempt_failed(self, failed: Failed) -> None:
        """The host will run the message again."""
        self.write([self.attempt(failed)])

    def gave_up(self, failed: Failed, reason: str) -> None:
        """The host will not run the message again: dead-letter it here."""
        self.write([self.give_up_event(self.attempt(failed), failed.origin, reason)])

    def give_up_event(self, last: HostAttempt, origin: Origin, reason: str) -> HostGaveUp:
        """The event that dead-letters a message here, on the system's queue and its DLQ."""
        dlq = self.app.policy(self.queue).dlq_for(self.queue)
        return HostGaveUp(
            attempt=last,
            origin=origin,
            queue=self.queue,
            dead_letter_queue=dlq,
            dlq_max_retries=self.app.policy(dlq).max_retries,
            reason=reason,
            labels={"origin": self.system, "origin_queue": origin.queue},
        )

    def succeeded(self, message_id: str) -> None:
        self.write([HostSucceeded(_event_id(), self.system, message_id, time.time())])

    def attempt(self, failed: Failed) -> HostAttempt:
        exc = failed.exception
        info = ErrorInfo.from_exception(exc)
        verdict = classify(info, self.app.rules)
        return HostAttempt(
            event_id=_event_id(),
            system=self.system,
            message_id=failed.message_id,
            started_at=failed.started_at,
            ended_at=failed.ended_at,
            worker=failed.worker,
            error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=self.redacted_message(info.message),
            traceback=self.redactor.redact_text(failed.traceback),
            http_status=info.http_status,
            error_class=verdict.error_class,
            rule=verdict.rule,
        )

    def redacted_message(self, message: str) -> str:
        """An attempt's message as recorded: redacted, then cut (a cut first could leave
        the part of a secret no rule recognises)."""
        return self.redactor.redact_text(message[: MESSAGE_LIMIT + SECRET_MARGIN])[:MESSAGE_LIMIT]

    def write(self, events: Sequence[HostEvent]) -> None:
        """Events spooled earlier first, then these; to the spool if the store fails."""
        try:
            if self.spool.held():
                with self.spool.locked():  # after what waits, in the order it was spooled
                    self.spool.drain_locked(self._store)
                    self._store(events)
            else:
                self._store(events)
        except Exception as exc:  # never break the host: keep the events for later
            with self.spool.locked():
                self.spool.add(events, cause=exc)
            self.spool.retry_in_background(self._store)

    def _store(self, events: Sequence[HostEvent]) -> list[str]:
        return self.app.store.record_host_events(events, now=time.time())


def capture_safely(action: str, call: Any, *args: Any) -> None:
    """Run a hook's recording; an error in it is logged, never raised into the host."""
    try:
        call(*args)
    except Exception:
        log.exception("deadletter could not record %s; the host carries on", action)


# -- re-drive ---------------------------------------------------------------------------


class Sender(Protocol):
    """Sends an adopted job back to its host system."""

    system: str

    def send(self, origin: Origin, message_id: str, payload: Payload, job_id: str) -> None: ...

    def already_sent(self, origin: Origin, message_id: str) -> bool:
        """Whether the host holds `message_id` already (False when it cannot tell)."""
        ...


class Redrive:
    """The task that sends a requeued adopted job back to its host (the migration's
    trigger enqueues one per requeue). Its message id is derived from the requeue, and
    is recorded as sent once the broker took it, so that a re-run sends nothing."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.senders: dict[str, Sender] = {}

    def __call__(self, job_id: str, requeue: int) -> None:
        store = self.app.store
        job, origin = store.get_job(job_id), store.origin(job_id)
        if job is None or origin is None or job.status is not JobState.QUEUED:
            log.info("re-drive of %s: nothing to send (the job is not queued)", job_id)
            return
        sender = self.senders.get(origin.system)
        if sender is None:
            raise NoSender(
                f"no sender for {origin.system} jobs in this worker: call"
                f" deadletter.integrations.{origin.system}.capture(...) in the --app module"
            )
        message_id = f"{origin.original_id}-redrive-{requeue}"
        if store.prepare_send(origin.system, message_id, job_id):
            return
        if not sender.already_sent(origin, message_id):
            sender.send(origin, message_id, job.payload, job_id)
        store.mark_sent(origin.system, message_id, at=time.time())
        log.info("re-drove %s to %s as %s", job_id, origin.system, message_id)


class NoSender(ConfigError, LookupError):
    """A re-drive names a host system this worker was not given a sender for."""


def add_sender(app: App, sender: Sender) -> None:
    """Let `app`'s workers re-drive `sender.system`'s jobs (registering the task once)."""
    task = app.tasks.get(REDRIVE_TASK)
    if task is None:
        task = app.task(name=REDRIVE_TASK, queue=REDRIVE_QUEUE)(Redrive(app))
    redrive = task.function
    if not isinstance(redrive, Redrive):
        raise TypeError(f"task {REDRIVE_TASK} is registered and is not deadletter's re-drive")
    redrive.senders[sender.system] = sender


def arguments(args: Sequence[Any] | None, kwargs: dict[str, Any] | None) -> JSONObject:
    """A host message's arguments as JSON; a value that is not JSON is kept as its repr."""
    value = {"args": list(args or ()), "kwargs": dict(kwargs or {})}
    loaded: JSONObject = json.loads(json.dumps(value, default=repr))
    return loaded


def _event_id() -> str:
    return uuid.uuid4().hex
