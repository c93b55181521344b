"""Plain data shared by every layer: jobs, attempts, states and error classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from deadletter.errors import WorkerLost

# JSON as deadletter writes and reads it, checked by mypy: what is read back is narrowed
# where it is used (DeadLetter.from_json, store/rows.py `load_object`).
JSONValue = dict[str, "JSONValue"] | list["JSONValue"] | str | int | float | bool | None
JSONObject = dict[str, JSONValue]
# A job's payload: JSON (payloads.py checks it at enqueue) whose shape is the task's,
# known to the code that enqueues the job and to the task that runs it, not to deadletter.
# Any, not JSONValue: that code (and the tests) index into it as they know it,
# without a cast at each read; deadletter reads no field of a payload but a task's
# arguments (worker/slots.py, the hosts' senders) and a dead letter's (DeadLetter.from_json,
# narrowed).
Payload = Any


class JobState(StrEnum):
    """Where a job is in its life; every job is in exactly one of these."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.DEAD_LETTERED, JobState.FAILED)


class ErrorClass(StrEnum):
    RECOVERABLE = "RECOVERABLE"
    USER_ERROR = "USER_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job as a producer describes it, before the store gives it a state."""

    id: str
    queue: str
    task: str
    payload: Payload
    max_retries: int
    dead_letter_queue: str
    run_at: float
    created_at: float
    priority: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    # The task's own retry budget (None: the queue's), kept for a requeue from the DLQ.
    task_max_retries: int | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof of ownership: an update is applied only while the token still matches."""

    job_id: str
    token: int


@dataclass(frozen=True, slots=True)
class LeasedJob:
    id: str
    queue: str
    task: str
    payload: Payload
    attempt: int
    max_retries: int
    dead_letter_queue: str
    token: int
    lease_expires_at: float
    labels: dict[str, str]
    started_at: float
    # Workers lost holding this job before its begin was written (migration 0024): from
    # the first, the worker writes each begin before it starts the task.
    worker_losses: int
    # What the worker told this run, read by its task through `current_job()`: "lost",
    # when the heartbeat found the lease lost (issue 7), and "cancel", when an operator
    # asked the run to stop (ops/cancel.py). A set, not two threading.Events: nothing
    # waits on them, and the Events were 6 of the 10 us it took to make a leased job, on
    # the thread every lease passes through (docs/benchmarks.md).
    _told: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def lease(self) -> Lease:
        return Lease(self.id, self.token)

    @property
    def lease_lost(self) -> bool:
        """Whether another worker took this job over: its outcome will be discarded."""
        return "lost" in self._told

    def lose_lease(self) -> None:
        self._told.add("lost")

    @property
    def cancel_requested(self) -> bool:
        """Whether an operator cancelled this job while it ran: stop early. The job is
        cancelled whether the run then returns or raises."""
        return "cancel" in self._told

    def request_cancel(self) -> None:
        self._told.add("cancel")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a job, as recorded in its history."""

    job_id: str
    number: int
    started_at: float
    ended_at: float
    worker: str
    error_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    http_status: int | None = None
    error_class: ErrorClass | None = None
    rule: str | None = None

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "number": self.number,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "worker": self.worker,
            "error_type": self.error_type,
            "message": self.message,
            "traceback": self.traceback,
            "http_status": self.http_status,
            "error_class": self.error_class.value if self.error_class else None,
            "rule": self.rule,
        }


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    queue: str
    task: str
    payload: Payload
    status: JobState
    priority: int
    attempts: int
    max_retries: int
    dead_letter_queue: str
    run_at: float
    created_at: float
    started_at: float | None
    completed_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    lease_token: int
    last_error: str | None
    labels: dict[str, str]
    idempotency_key: str | None
    # Runs lost with their worker before their begin was written: not charged as attempts
    # (migration 0024, worker/begins.py).
    worker_losses: int

    @property
    def retry_count(self) -> int:
        """Retries taken so far: the seed's `retry_count` (attempts after the first)."""
        return max(self.attempts - 1, 0)


# Dead letters the handler gave up on wait on their DLQ's parked queue, for an operator,
# never for a worker.
PARKED_SUFFIX = "-parked"


def parked_queue(dead_letter_queue: str) -> str:
    """Where the dead letters of `dead_letter_queue` that the handler gave up on wait."""
    return f"{dead_letter_queue}{PARKED_SUFFIX}"


def is_parked_queue(queue: str) -> bool:
    return queue.endswith(PARKED_SUFFIX)


WORKER_LOST = f"{WorkerLost.__module__}.{WorkerLost.__qualname__}"


@dataclass(frozen=True, slots=True)
class LastFailure:
    """The last attempt in a dead letter's history, as the letter carries it: what the
    handler fingerprints, classifies and words. A letter without history has none of it."""

    number: int = 1
    ended_at: float | None = None
    error_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    http_status: int | None = None
    error_class: str | None = None
    rule: str | None = None

    @classmethod
    def from_json(cls, attempt: JSONValue) -> LastFailure:
        """An attempt as `Attempt.to_json` wrote it; a field of another type reads as
        missing."""
        read = _Fields(attempt)
        return cls(
            number=read.integer("number") or 1,
            ended_at=read.number("ended_at") or None,
            error_type=read.text("error_type"),
            message=read.text("message"),
            traceback=read.text("traceback"),
            http_status=read.integer("http_status"),
            error_class=read.text("error_class"),
            rule=read.text("rule"),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter's payload read back (store/base.py `dead_letter_payload` writes it):
    the job as it was, why it was dead-lettered, and its last failure."""

    job_id: str
    queue: str
    task: str
    labels: dict[str, str]
    created_at: float | None
    reason: str
    poison: bool
    last: LastFailure
    # What went wrong: the last attempt that failed of the job's own error; its last
    # attempt only when every attempt lost its worker. A lost worker says nothing about
    # the job, so it classifies, groups and words the failure only when nothing else can.
    cause: LastFailure

    @classmethod
    def from_json(cls, body: JSONValue) -> DeadLetter:
        read = _Fields(body)
        attempts = read.items("attempts") or [{}]
        own = [a for a in attempts if _Fields(a).text("error_type") != WORKER_LOST]
        return cls(
            job_id=read.required("job_id"),
            queue=read.required("queue"),
            task=read.required("task"),
            labels={str(k): str(v) for k, v in read.fields("labels").items()},
            created_at=read.number("created_at") or None,
            reason=read.text("reason") or "",
            poison=read.flag("poison"),
            last=LastFailure.from_json(attempts[-1]),
            cause=LastFailure.from_json((own or attempts)[-1]),
        )


class _Fields:
    """Typed reads of a JSON object read back: a field of another type reads as missing,
    so that what deadletter did not write is not used."""

    def __init__(self, value: JSONValue) -> None:
        self._object = value if isinstance(value, dict) else {}

    def fields(self, name: str) -> JSONObject:
        value = self._object.get(name)
        return value if isinstance(value, dict) else {}

    def items(self, name: str) -> list[JSONValue]:
        value = self._object.get(name)
        return value if isinstance(value, list) else []

    def text(self, name: str) -> str | None:
        value = self._object.get(name)
        return value if isinstance(value, str) else None

    def required(self, name: str) -> str:
        """A text field every letter has (a KeyError if missing)."""
        return str(self._object[name])

    def number(self, name: str) -> float | None:
        value = self._object.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def integer(self, name: str) -> int | None:
        value = self._object.get(name)
        return None if isinstance(value, bool) or not isinstance(value, int) else value

    def flag(self, name: str) -> bool:
        return self._object.get(name) is True


class Route(StrEnum):
    """Where a handled dead letter goes (the seed's four actions)."""

    RECOVERY = "recovery"
    NOTIFY_USER = "notify_user"
    ALERT_OPS = "alert_ops"
    REVIEW = "review"


class AlertKind(StrEnum):
    """The kinds of alert a handled dead letter raises about its error group."""

    NEW_FAILURE = "new_failure"  # a fingerprint never seen before
    SYSTEM_ERROR = "system_error"
    POISON = "poison"  # a job that kept killing its worker, quarantined


FAILURE_ALERT_KINDS = tuple(kind.value for kind in AlertKind)


@dataclass(frozen=True, slots=True)
class Notice:
    """A user notification as the DLQ handler words it (dlq/wording.py)."""

    title: str
    message: str


@dataclass(frozen=True, slots=True)
class AlertText:
    """An ops alert as the DLQ handler words it: its id (the dedup key of its insert),
    kind, title and body."""

    id: str
    kind: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class FailureAlert:
    """The alert a handled dead letter may raise, worded by the handler.

    Only the store knows, inside the transaction, whether the fingerprint is new and
    what was raised within the window, so it picks: nothing if `always` is false and
    the fingerprint was seen before; otherwise a count into the latest alert about the
    fingerprint, within the window, whose kind is in `folds_into`; else `first` for a
    fingerprint no alert of this batch named yet and new to the store, `again` if not.
    """

    first: AlertText
    again: AlertText
    folds_into: frozenset[str]
    always: bool


@dataclass(frozen=True, slots=True)
class RecordedFailure:
    """A handled dead letter as recorded: what failed, and how it was classified.
    Text fields are redacted of secrets."""

    dead_letter_id: str
    job_id: str
    queue: str
    task: str
    error_class: ErrorClass
    rule: str
    fingerprint: str
    error_type: str | None
    error_message: str | None
    http_status: int | None
    retry_count: int
    reason: str
    labels: dict[str, str]
    forensics_key: str | None
    created_at: float
    failed_at: float


@dataclass(frozen=True, slots=True)
class FailureRecord(RecordedFailure):
    """A handled dead letter, where it is routed, and the rows its route adds, as the
    handler decides them (dlq/handler.py `routed`): the store inserts what it is given.
    `notice` and `alert`, worded by the handler, are also redacted of PII, since they
    leave the system."""

    route: Route
    user_id: str | None = None
    recovery: bool = False  # a pending row on the recovery queue
    review: bool = False  # an entry in the review log
    notice: Notice | None = None
    alert: FailureAlert | None = None  # None: it raises no alert


# -- jobs of other job systems (Celery, RQ, Dramatiq), dead-lettered here -------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an adopted job came from: enough to show it and to send it back."""

    system: str
    queue: str
    task: str
    original_id: str
    # Not JSONObject: the API's schema is read from this class (ops/failures.py
    # FailureDetails), and pydantic cannot follow that recursive alias; written as
    # JSON by integrations/core.py `arguments` and each host's reader.
    arguments: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "system": self.system,
            "queue": self.queue,
            "task": self.task,
            "original_id": self.original_id,
            "arguments": self.arguments,
            "options": self.options,
        }


@dataclass(frozen=True, slots=True)
class HostAttempt:
    """One failed run of a host message, as its host's worker saw it. `event_id` is made
    where the failure happened, so that recording it twice records it once."""

    event_id: str
    system: str
    message_id: str
    started_at: float
    ended_at: float
    worker: str
    error_type: str | None
    message: str | None
    traceback: str | None
    http_status: int | None
    error_class: ErrorClass | None
    rule: str | None


@dataclass(frozen=True, slots=True)
class HostGaveUp:
    """The host will not run the message again: dead-letter its job here, with every
    attempt recorded for the message (and for earlier runs of the same job)."""

    attempt: HostAttempt
    origin: Origin
    queue: str
    dead_letter_queue: str
    dlq_max_retries: int
    reason: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostSucceeded:
    """A host message that had failed before, or re-drove a job, ran to success."""

    event_id: str
    system: str
    message_id: str
    at: float


HostEvent = HostAttempt | HostGaveUp | HostSucceeded
