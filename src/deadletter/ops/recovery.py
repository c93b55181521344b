"""Requeue and abandon one failed job; the recovery queue by status.

Each action is one transaction whose first write is conditional on the job being
`failed`. That write locks the job's row (PostgreSQL) or the database (SQLite), so two
operators acting on one job at once are serialised, and the second finds the job no
longer failed and is told so: a double click re-runs a job once.

A requeued job keeps its attempt count and its history: it gets `max_retries = attempts
+ its task's max_retries` (the one set on the task, kept on the job at enqueue; else the
queue's), a fresh budget whose attempt numbers carry on from the old.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deadletter.config import QueuePolicy
from deadletter.errors import InvalidRequest, PayloadError
from deadletter.model import Payload
from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.filters import Keyset, Page, check_limit, operator_text, required
from deadletter.payloads import encode_payload
from deadletter.store import recovery as store_recovery
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.query import where
from deadletter.store.recovery import RecoveryEntry as RecoveryEntry
from deadletter.store.reports import RECOVERY_STATUSES

Policy = Callable[[str], QueuePolicy]


class Outcome(StrEnum):
    REQUEUED = "requeued"
    ABANDONED = "abandoned"
    REVIEWED = "reviewed"
    NOT_FOUND = "not_found"
    NOT_FAILED = "not_failed"
    ALREADY_REQUEUED = "already_requeued"
    ALREADY_ABANDONED = "already_abandoned"
    ALREADY_REVIEWED = "already_reviewed"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What one action did to its target (a job, or a review entry), in words too."""

    target: str
    outcome: Outcome
    message: str

    @property
    def done(self) -> bool:
        return self.outcome in (Outcome.REQUEUED, Outcome.ABANDONED, Outcome.REVIEWED)


@dataclass(frozen=True, slots=True)
class Request:
    """Who acts, why, when, and the bulk run (its audit record's id) the action is part of."""

    actor: str
    reason: str
    at: float
    bulk_run: int | None = None


def requeue(
    store: Store,
    job_id: str,
    *,
    actor: str,
    reason: str = "",
    policy: Policy,
    payload_limit: int,
    payload: Payload | None = None,
) -> ActionResult:
    """Put a failed job back on its own queue; `payload` (when given) replaces its
    payload, and the old one is kept in job_payload_history. A corrected payload is
    held to the limits of an enqueued one: `payload_limit` bytes, plain JSON, nesting
    at most `payloads.MAX_DEPTH` deep."""
    request = Request(required(actor, "actor"), operator_text(reason), time.time())
    new_payload = None if payload is None else checked_payload(payload, payload_limit)
    with store.transaction() as execute:
        return requeue_in(execute, job_id, request, policy=policy, payload=new_payload)


def abandon(store: Store, job_id: str, *, actor: str, reason: str) -> ActionResult:
    """Give up on a failed job: its recovery row becomes `abandoned`. The job stays
    failed, and may still be requeued on its own (not by a bulk requeue)."""
    why = operator_text(required(reason, "reason"))
    request = Request(required(actor, "actor"), why, time.time())
    with store.transaction() as execute:
        return abandon_in(execute, job_id, request)


def checked_payload(payload: Payload, limit: int) -> str:
    """A corrected payload as JSON text: the `{"args": [...], "kwargs": {...}}` a task
    is called with."""
    if not (
        isinstance(payload, dict)
        and set(payload) <= {"args", "kwargs"}
        and isinstance(payload.get("args", []), list)
        and isinstance(payload.get("kwargs", {}), dict)
    ):
        raise InvalidRequest("payload", 'must be {"args": [...], "kwargs": {...}}')
    try:
        return encode_payload(payload, limit=limit, what="the corrected payload")
    except PayloadError as exc:
        raise InvalidRequest("payload", str(exc).removeprefix("the corrected payload ")) from exc


def requeue_in(
    execute: Execute,
    job_id: str,
    request: Request,
    *,
    policy: Policy,
    payload: str | None = None,
    skip_abandoned: bool = False,
) -> ActionResult:
    """Requeue within the caller's transaction (after `prepare_requeue`)."""
    queue = store_recovery.job_queue(execute, job_id)
    if queue is None:
        return _refused(execute, job_id)
    retries = policy(queue).max_retries
    moved = store_recovery.requeue_job(
        execute, job_id, retries=retries, at=request.at, abandoned_too=not skip_abandoned
    )
    if moved is None:
        return _refused(execute, job_id)
    if payload is not None:
        _replace_payload(execute, job_id, payload, request)
    _set_recovery(execute, job_id, queue, "requeued", request)
    details = {"attempts": moved[0], "max_retries": moved[1], "payload_edited": payload is not None}
    _audit(execute, AuditAction.REQUEUE, job_id, request, details)
    return ActionResult(job_id, Outcome.REQUEUED, f"job {job_id} is queued again on {queue}")


def abandon_in(execute: Execute, job_id: str, request: Request) -> ActionResult:
    # Locked first: an abandon and a requeue of the same job are serialised.
    queue = store_recovery.lock_failed(execute, job_id)
    if queue is None or not _set_recovery(execute, job_id, queue, "abandoned", request):
        return _refused(execute, job_id)
    _audit(execute, AuditAction.ABANDON, job_id, request, {})
    return ActionResult(job_id, Outcome.ABANDONED, f"job {job_id} is abandoned")


def _replace_payload(execute: Execute, job_id: str, payload: str, request: Request) -> None:
    store_recovery.replace_payload(execute, job_id, payload, at=request.at, by=request.actor)
    _audit(execute, AuditAction.EDIT, job_id, request, {"field": "payload"})


def _set_recovery(execute: Execute, job_id: str, queue: str, status: str, request: Request) -> bool:
    """Move the job's recovery row to `status`; False when it was abandoned already."""
    return store_recovery.set_recovery(
        execute,
        job_id,
        queue=queue,
        status=status,
        reason=request.reason,
        requeued=1 if status == "requeued" else 0,
        bulk_run=request.bulk_run,
        at=request.at,
    )


def _audit(
    execute: Execute, action: AuditAction, job_id: str, request: Request, details: dict[str, Any]
) -> None:
    if request.bulk_run is not None:
        details = {**details, "bulk_run": request.bulk_run}
    audit.record(
        execute,
        at=request.at,
        actor=request.actor,
        action=action,
        target=job_id,
        reason=request.reason,
        details=details,
    )


def _refused(execute: Execute, job_id: str) -> ActionResult:
    """Why an action did not apply, read after its conditional write found nothing to do."""
    found = store_recovery.standing(execute, job_id)
    if found is None:
        return ActionResult(job_id, Outcome.NOT_FOUND, f"no job {job_id}")
    status, requeues, recovery = found.status, found.requeues, found.recovery
    if status == "failed" and recovery == "abandoned":
        return ActionResult(job_id, Outcome.ALREADY_ABANDONED, f"job {job_id} was abandoned")
    if requeues > 0 and status != "failed":
        message = f"job {job_id} was already requeued; it is {status} now"
        return ActionResult(job_id, Outcome.ALREADY_REQUEUED, message)
    return ActionResult(job_id, Outcome.NOT_FAILED, f"job {job_id} is {status}, not failed")


RECOVERY_KEYS = Keyset("recovery", *store_recovery.KEYSET)


def recovery_queue(
    store: Store, *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> Page[RecoveryEntry]:
    """Rows of the recovery queue, most recently changed first; of one status if given."""
    if status is not None and status not in RECOVERY_STATUSES:
        known = ", ".join(RECOVERY_STATUSES)
        raise InvalidRequest("status", f"unknown status {status!r}; known: {known}")
    clauses = [*RECOVERY_KEYS.after(cursor, status)]
    if status is not None:
        clauses.append(store_recovery.of_status(status))
    with store.snapshot() as execute:
        entries = store_recovery.entries(
            execute, where(clauses), RECOVERY_KEYS.order_by, check_limit(limit) + 1
        )
    return RECOVERY_KEYS.page(entries, limit, lambda e: (e.updated_at, e.job_id), status)
