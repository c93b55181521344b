"""Tasks and job specifications: what producers call to put work on a queue."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from deadletter.errors import PayloadError
from deadletter.model import NewJob

if TYPE_CHECKING:
    from deadletter.app import App

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    name: str
    queue: str
    max_retries: int | None
    timeout: float | None
    priority: int


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
        payload = {"args": list(self.args), "kwargs": self.kwargs}
        _check_payload(self.task, payload, limit)
        if self.delay < 0 or not math.isfinite(self.delay):
            raise PayloadError(f"delay of task {self.task} must be >= 0 seconds, not {self.delay}")
        return NewJob(
            id=f"job_{uuid.uuid4().hex}",
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
        )


class Task(Generic[P, R]):
    """A registered function: call it directly, or `enqueue` it to run on a worker."""

    def __init__(self, app: App, function: Callable[P, R], options: TaskOptions) -> None:
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


def _check_payload(task: str, payload: dict[str, Any], limit: int) -> None:
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(
            f"arguments of task {task} are not JSON: {exc}. Pass plain JSON values"
            " (str, int, float, bool, None, lists, dicts with str keys)."
        ) from exc
    size = len(text.encode())
    if size > limit:
        raise PayloadError(
            f"payload of task {task} is {size} bytes, over the limit of {limit} bytes;"
            " store large data elsewhere (e.g. the blob store) and pass its key,"
            " or raise payload_limit_bytes in deadletter.toml"
        )
