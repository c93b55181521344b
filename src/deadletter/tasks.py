"""Tasks and job specifications: what producers call to put work on a queue."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from deadletter.errors import InvalidArgument, PayloadError
from deadletter.model import NewJob
from deadletter.payloads import encode_payload
from deadletter.store.base import CallerConnection
from deadletter.store.rows import JsonText

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    name: str
    queue: str
    max_retries: int | None
    timeout: float | None
    priority: int
    # The task's own retry pacing (None: the queue's; see QueuePolicy.for_task).
    retry_backoff: float | None = None
    retry_backoff_max: float | None = None
    retry_jitter: bool | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to enqueue: a task, its arguments, and how to schedule it."""

    task: str
    queue: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    max_retries: int | None = None
    priority: int = 0
    delay: float = 0.0
    run_at: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def options(
        self,
        *,
        delay: float | None = None,
        run_at: float | None = None,
        priority: int | None = None,
        labels: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> JobSpec:
        """A copy with scheduling options: `labels` such as site_name or user."""
        return replace(
            self,
            delay=self.delay if delay is None else delay,
            run_at=self.run_at if run_at is None else run_at,
            priority=self.priority if priority is None else priority,
            labels={**self.labels, **(labels or {})},
            idempotency_key=idempotency_key or self.idempotency_key,
        )

    def to_new_job(
        self, *, now: float, max_retries: int, dead_letter_queue: str, limit: int
    ) -> NewJob:
        # Encoded once: the text that passed the checks is the text stored.
        arguments = {"args": list(self.args), "kwargs": self.kwargs}
        payload = _encode_payload(self.task, arguments, limit)
        if self.delay < 0 or not math.isfinite(self.delay):
            raise PayloadError(f"delay of task {self.task} must be >= 0 seconds, not {self.delay}")
        _check_stored_int("priority", self.task, self.priority)
        _check_stored_int("max_retries", self.task, max_retries)
        return NewJob(
            id=_new_id(),
            queue=self.queue,
            task=self.task,
            payload=payload,
            max_retries=max_retries,
            dead_letter_queue=dead_letter_queue,
            run_at=self.run_at if self.run_at is not None else now + self.delay,
            created_at=now,
            priority=self.priority,
            labels={str(k): str(v) for k, v in self.labels.items()},
            idempotency_key=self.idempotency_key,
            task_max_retries=self.max_retries,
        )


# The range of an INTEGER column on PostgreSQL (SQLite's is wider): the same job is
# accepted, or refused, on both backends.
STORED_INT = range(-(2**31), 2**31)


def _check_stored_int(name: str, task: str, value: int) -> None:
    if value not in STORED_INT:
        raise InvalidArgument(
            f"{name} of task {task} must be between {STORED_INT.start:,} and"
            f" {STORED_INT.stop - 1:,}, not {value:,}"
        )


class Producer(Protocol):
    """What a task enqueues through: the `App` that registered it."""

    def enqueue(self, spec: JobSpec, *, connection: CallerConnection | None = None) -> str: ...


class Task(Generic[P, R]):
    """A registered function: call it directly, or `enqueue` it to run on a worker."""

    def __init__(self, app: Producer, function: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.function = function
        self.options = options
        self.name = options.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def spec(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        return JobSpec(
            task=self.name,
            queue=self.options.queue,
            args=args,
            kwargs=dict(kwargs),
            max_retries=self.options.max_retries,
            priority=self.options.priority,
        )

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> str:
        return self.app.enqueue(self.spec(*args, **kwargs))

    def enqueue_in(self, connection: CallerConnection, /, *args: P.args, **kwargs: P.kwargs) -> str:
        """Enqueue in the caller's transaction on `connection` (`App.enqueue_many`): the
        job exists if and only if the caller commits. A parameter of its own, not a
        `connection=` of `enqueue`, which would take a task's argument of that name."""
        return self.app.enqueue(self.spec(*args, **kwargs), connection=connection)


def _new_id() -> str:
    """`job_` and 32 hex digits: the time in nanoseconds, then 64 random bits.

    Ids that grow with time are appended at the end of the primary-key index, not
    scattered over it (the idea of UUIDv7): on SQLite a batch insert into a large
    table costs ~20% less per job than with random ids."""
    return f"job_{time.time_ns():016x}{secrets.token_hex(8)}"


def _encode_payload(task: str, payload: dict[str, Any], limit: int) -> JsonText:
    return JsonText(encode_payload(payload, limit=limit, what=f"payload of task {task}"))
