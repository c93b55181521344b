"""Every error deadletter raises derives from one root.

DeadletterError
├── ConfigError            a setting is unknown, malformed or inconsistent
├── PayloadError           a job's payload is not JSON or is too large
├── UnknownTask            a job names a task this process does not know
├── InvalidRequest         an operator's request is invalid (also a ValueError)
├── InvalidArgument        a caller passed a value deadletter cannot use (also a ValueError)
├── InternalError          deadletter's own wiring failed a check it relies on (also a RuntimeError)
├── Unauthorized           a face refuses a caller: no session, or a scope too narrow
├── StoreError
│   └── StoreUnavailable   the database cannot be reached
├── BlobStoreError
│   ├── BlobNotFound
│   └── BlobStoreUnavailable
├── DeliveryError          a notification or alert could not be delivered
│   └── ReceiverUnavailable  a target could not be reached or answered 5xx/429
├── TaskSignal             raised by a task to say what should happen next
│   ├── Retry              retry after a given delay
│   └── PermanentFailure   do not retry: dead-letter now
│       └── InvalidInput   the input is invalid; retrying will not help
├── JobTimeout             a task ran past its timeout
└── WorkerLost             the worker running a job was lost before it finished
"""

from __future__ import annotations


class DeadletterError(Exception):
    """Root of every error deadletter raises."""


class ConfigError(DeadletterError):
    """A setting is unknown, malformed or inconsistent."""


class PayloadError(DeadletterError):
    """A job's payload is not JSON or is larger than the limit."""


class UnknownTask(DeadletterError):
    """A job names a task that this process has not registered."""


class InvalidRequest(DeadletterError, ValueError):
    """An operator's request is invalid: a filter value, a cursor, a missing reason.

    `field` names what to correct, so that the API can point at it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class InvalidArgument(DeadletterError, ValueError):
    """A caller passed a value deadletter cannot use: a worker with no queue, a rate
    limit of zero, a malformed blob key, a token without a scope. A ValueError too,
    since that is what Python code catches for a bad value."""


class InternalError(DeadletterError, RuntimeError):
    """A check deadletter relies on failed: a route not wired through its guard, a random
    id that collided. Not the caller's input; the message says what to do."""


class Unauthorized(DeadletterError):
    """A face refuses a caller: no live session, or a scope too narrow for the action."""


class StoreError(DeadletterError):
    """The job store failed."""


class StoreUnavailable(StoreError):
    """The job store cannot be reached."""


class TaskSignal(DeadletterError):
    """Raised by a task to tell the worker what to do next."""


class Retry(TaskSignal):
    """Retry the job after `delay` seconds (None: the queue's backoff), if attempts remain."""

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class NotTaken(TaskSignal):
    """Returned by a batch task for a job it did not handle (a component it needs is
    down): the lease goes back uncharged and the job waits on its queue."""


class PermanentFailure(TaskSignal):
    """Fail now, without further retries: the job goes to its dead-letter queue."""


class InvalidInput(PermanentFailure):
    """The job's input is invalid; retrying will not help."""


class JobTimeout(DeadletterError, TimeoutError):
    """The task ran past its timeout."""

    def __init__(self, message: str = "the task ran past its timeout") -> None:
        super().__init__(message)


class WorkerLost(DeadletterError):
    """The worker running the job was lost before it finished (its lease expired)."""


class BlobStoreError(DeadletterError):
    """The forensics blob store failed."""


class BlobNotFound(BlobStoreError):
    """No blob is stored under the key."""


class BlobStoreUnavailable(BlobStoreError):
    """The blob store cannot be reached or written; the message says what to do."""


class DeliveryError(DeadletterError):
    """A notification or alert could not be delivered; the message names the targets.

    `delivered` names the targets that did take it when others failed, so that a retry
    is sent only to the others."""

    def __init__(self, message: str, *, delivered: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.delivered = delivered


class ReceiverUnavailable(DeliveryError):
    """A target could not be reached (no connection, a timeout) or answered that it
    cannot take messages now (HTTP 5xx, 429): its receiver may be down, not the message
    at fault (notify/dispatch.py tells which)."""
