"""Reading failures: pages of the list, one failure's details, failure groups.

A failure is one handled dead letter (a row of dlq_failures); a job requeued and failed
again has several. Each is shown with its job's status now and its recovery status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from deadletter.errors import BlobStoreError, InvalidRequest
from deadletter.forensics import document as forensic
from deadletter.forensics.base import BlobStore
from deadletter.model import Attempt, ErrorClass, Job, JSONObject, Origin, Payload
from deadletter.ops.filters import (
    FailureFilter,
    Keyset,
    Page,
    check_error_class,
    check_limit,
)
from deadletter.store import failure_reads as reads
from deadletter.store.base import Store
from deadletter.store.failure_reads import Group as Group
from deadletter.store.failures import Execute
from deadletter.store.query import Clause
from deadletter.store.rows import load_labels, loads

KEYS = Keyset("failures", *reads.KEYSET)


@dataclass(frozen=True, slots=True)
class FailureItem:
    """One failure as listed: what failed and why, and where its job is now."""

    dead_letter_id: str
    job_id: str
    queue: str
    task: str
    error_class: str
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
    handled_at: float
    job_status: str | None
    recovery_status: str | None

    def to_json(self) -> JSONObject:
        return asdict(self)


ITEM_FIELDS = [f.name for f in fields(FailureItem)]


def fetch_failures(
    execute: Execute, clauses: list[Clause], *, limit: int, payload: bool = False
) -> list[tuple[Any, ...]]:
    """Rows of failures matching `clauses`, newest first (see store/failure_reads.py)."""
    return reads.fetch_failures(execute, clauses, KEYS.order_by, limit=limit, payload=payload)


def failure_item(row: tuple[Any, ...]) -> FailureItem:
    # Not strict: a payload read after the columns is left out.
    values = dict(zip(ITEM_FIELDS, row, strict=False))
    values["labels"] = load_labels(values["labels"])
    return FailureItem(**values)


def failure_key(item: FailureItem) -> tuple[float, str]:
    return item.failed_at, item.dead_letter_id


def list_failures(
    store: Store,
    failure_filter: FailureFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[FailureItem]:
    failure_filter = failure_filter or FailureFilter()
    scope = cursor_scope(failure_filter)
    clauses = [*failure_filter.clauses(), *KEYS.after(cursor, scope)]
    with store.snapshot() as execute:
        rows = fetch_failures(execute, clauses, limit=check_limit(limit) + 1)
    return KEYS.page([failure_item(row) for row in rows], limit, failure_key, scope)


def cursor_scope(failure_filter: FailureFilter) -> FailureFilter:
    """What a cursor of failures is bound to: every field but the time range, which may
    move between pages (the dashboard's "last hour" does) and leaves the keyset order as
    it was."""
    return replace(failure_filter, since=None, until=None)


def groups(
    store: Store,
    *,
    error_class: str | None = None,
    queue: str | None = None,
    sort: Literal["count", "last_seen"] = "count",
    limit: int = 50,
) -> list[Group]:
    if sort not in reads.GROUP_ORDERS:
        orders = ", ".join(reads.GROUP_ORDERS)
        raise InvalidRequest("sort", f"must be one of {orders}, got {sort!r}")
    error_class = check_error_class(error_class)
    with store.snapshot() as execute:
        return reads.groups(
            execute, error_class=error_class, queue=queue, sort=sort, limit=check_limit(limit)
        )


@dataclass(frozen=True, slots=True)
class PayloadVersion:
    """A payload that an operator's edit replaced."""

    payload: Payload
    replaced_at: float
    replaced_by: str


@dataclass(frozen=True, slots=True)
class FailureDetails:
    """Everything known about a failed job. `job.payload`, `payload_history` and the
    forensic document's `job.payload` carry the job's payload: admin-only data.
    `forensics_error` says why the forensic document could not be read, if it could not."""

    job: Job
    failure: FailureItem
    earlier_failures: list[FailureItem]
    attempts: list[Attempt]
    group: Group | None
    payload_history: list[PayloadVersion]
    forensics: dict[str, Any] | None
    forensics_error: str | None
    # Where a job of another system (Celery, RQ, Dramatiq) came from; None for a native one.
    origin: Origin | None = None

    @property
    def error_class(self) -> ErrorClass:
        return ErrorClass(self.failure.error_class)


# A job fails once per requeue; more than this many failures of one job are not shown.
MAX_FAILURES = 1000


def failure_details(store: Store, blobs: BlobStore, job_id: str) -> FailureDetails | None:
    """The job's latest failure with its history; None when the job never failed."""
    job = store.get_job(job_id)
    if job is None:
        return None
    with store.snapshot() as execute:
        rows = fetch_failures(execute, [reads.of_job(job_id)], limit=MAX_FAILURES)
        if not rows:
            return None
        failures = [failure_item(row) for row in rows]
        group = reads.group(execute, failures[0].fingerprint)
        history = reads.payload_history(execute, job_id)
    document, error = _forensics(blobs, failures[0].forensics_key)
    return FailureDetails(
        job=job,
        failure=failures[0],
        earlier_failures=failures[1:],
        attempts=store.attempts(job_id),
        group=group,
        payload_history=[PayloadVersion(loads(p), at, by) for p, at, by in history],
        forensics=document,
        forensics_error=error,
        origin=store.origin(job_id),
    )


def _forensics(blobs: BlobStore, key: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The forensic document, or why it cannot be read: the details are worth showing
    without it while the blob store is down or the document is damaged."""
    if key is None:
        return None, "no forensic record was stored for this failure"
    try:
        return forensic.decode(blobs.get(key)), None
    except (BlobStoreError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
