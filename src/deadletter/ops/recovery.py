"""Requeue and abandon one failed job; the recovery queue by status.

Each action is one transaction whose first write is conditional on the job being
`failed`. That write locks the job's row (PostgreSQL) or the database (SQLite), so two
operators acting on one job at once are serialised, and the second finds the job no
longer failed and is told so: a double click re-runs a job once.

A requeued job keeps its attempt count and its history: it gets `max_retries = attempts
+ the queue's max_retries`, a fresh budget whose attempt numbers carry on from the old.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deadletter.config import QueuePolicy
from deadletter.errors import InvalidRequest, PayloadError
from deadletter.model import JSON
from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.filters import Keyset, Page, check_limit, operator_text, required
from deadletter.payloads import encode_payload
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.query import where
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
    payload: JSON | None = None,
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


def checked_payload(payload: JSON, limit: int) -> str:
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


# SQLite's migration runner cannot hold a trigger (it splits files on semicolons), so the
# trigger that settles a requeued job's recovery row is created here, in the transaction
# of a requeue, before any job can need it. PostgreSQL has it from its migration 0004.
JOB_QUEUE = "SELECT queue FROM queue_jobs WHERE id = ?"

REQUEUE_JOB = """
UPDATE queue_jobs
SET status = 'queued', max_retries = attempts + ?, run_at = ?, completed_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, requeues = requeues + 1
WHERE id = ? AND status = 'failed'
    AND (? OR NOT EXISTS (SELECT 1 FROM dlq_recovery_queue r
                          WHERE r.job_id = queue_jobs.id AND r.status = 'abandoned'))
RETURNING attempts, max_retries
"""

KEEP_PAYLOAD = """
INSERT INTO job_payload_history (job_id, payload, replaced_at, replaced_by)
SELECT id, payload, ?, ? FROM queue_jobs WHERE id = ?
"""
SET_PAYLOAD = "UPDATE queue_jobs SET payload = ? WHERE id = ?"

# One recovery row per job, created when the job had none (a USER_ERROR job, say). An
# abandon of an abandoned row changes nothing, and says so by returning no row.
UPSERT_RECOVERY = """
INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status, reason, requeue_count,
    bulk_run, created_at, updated_at)
VALUES (?, (SELECT dead_letter_id FROM dlq_failures WHERE job_id = ?
            ORDER BY failed_at DESC, dead_letter_id DESC LIMIT 1),
        ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
    requeue_count = dlq_recovery_queue.requeue_count + excluded.requeue_count,
    bulk_run = excluded.bulk_run, updated_at = excluded.updated_at
WHERE NOT (dlq_recovery_queue.status = 'abandoned' AND excluded.status = 'abandoned')
RETURNING job_id
"""


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
    row = execute(JOB_QUEUE, (job_id,)).fetchone()
    if row is None:
        return _refused(execute, job_id)
    queue = row[0]
    params = (policy(queue).max_retries, request.at, job_id, not skip_abandoned)
    moved = execute(REQUEUE_JOB, params).fetchone()
    if moved is None:
        return _refused(execute, job_id)
    if payload is not None:
        _replace_payload(execute, job_id, payload, request)
    _set_recovery(execute, job_id, queue, "requeued", request)
    details = {"attempts": moved[0], "max_retries": moved[1], "payload_edited": payload is not None}
    _audit(execute, AuditAction.REQUEUE, job_id, request, details)
    return ActionResult(job_id, Outcome.REQUEUED, f"job {job_id} is queued again on {queue}")


def abandon_in(execute: Execute, job_id: str, request: Request) -> ActionResult:
    # A no-op write on the job's row: it serialises an abandon with a requeue of the same
    # job, and checks in the same step that the job is failed.
    locked = execute(
        "UPDATE queue_jobs SET requeues = requeues WHERE id = ? AND status = 'failed'"
        " RETURNING queue",
        (job_id,),
    ).fetchone()
    if locked is None or not _set_recovery(execute, job_id, locked[0], "abandoned", request):
        return _refused(execute, job_id)
    _audit(execute, AuditAction.ABANDON, job_id, request, {})
    return ActionResult(job_id, Outcome.ABANDONED, f"job {job_id} is abandoned")


def _replace_payload(execute: Execute, job_id: str, payload: str, request: Request) -> None:
    execute(KEEP_PAYLOAD, (request.at, request.actor, job_id))
    execute(SET_PAYLOAD, (payload, job_id))
    _audit(execute, AuditAction.EDIT, job_id, request, {"field": "payload"})


def _set_recovery(execute: Execute, job_id: str, queue: str, status: str, request: Request) -> bool:
    """Move the job's recovery row to `status`; False when it was abandoned already."""
    added = 1 if status == "requeued" else 0
    params = (job_id, job_id, queue, status, request.reason, added, request.bulk_run)
    return execute(UPSERT_RECOVERY, (*params, request.at, request.at)).fetchone() is not None


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


STATE = """
SELECT j.status, j.requeues, r.status FROM queue_jobs j
LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id
WHERE j.id = ?
"""


def _refused(execute: Execute, job_id: str) -> ActionResult:
    """Why an action did not apply, read after its conditional write found nothing to do."""
    row = execute(STATE, (job_id,)).fetchone()
    if row is None:
        return ActionResult(job_id, Outcome.NOT_FOUND, f"no job {job_id}")
    status, requeues, recovery = row
    if status == "failed" and recovery == "abandoned":
        return ActionResult(job_id, Outcome.ALREADY_ABANDONED, f"job {job_id} was abandoned")
    if requeues > 0 and status != "failed":
        message = f"job {job_id} was already requeued; it is {status} now"
        return ActionResult(job_id, Outcome.ALREADY_REQUEUED, message)
    return ActionResult(job_id, Outcome.NOT_FAILED, f"job {job_id} is {status}, not failed")


@dataclass(frozen=True, slots=True)
class RecoveryEntry:
    job_id: str
    dead_letter_id: str
    queue: str
    status: str
    reason: str | None
    requeue_count: int
    bulk_run: int | None
    created_at: float
    updated_at: float


RECOVERY_KEYS = Keyset("recovery", "updated_at", "job_id")
RECOVERY_COLUMNS = (
    "job_id, dead_letter_id, queue, status, reason, requeue_count, bulk_run, created_at, updated_at"
)


def recovery_queue(
    store: Store, *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> Page[RecoveryEntry]:
    """Rows of the recovery queue, most recently changed first; of one status if given."""
    if status is not None and status not in RECOVERY_STATUSES:
        known = ", ".join(RECOVERY_STATUSES)
        raise InvalidRequest("status", f"unknown status {status!r}; known: {known}")
    clauses = [*RECOVERY_KEYS.after(cursor, status)]
    if status is not None:
        clauses.append(("status = ?", (status,)))
    condition, params = where(clauses)
    sql = f"SELECT {RECOVERY_COLUMNS} FROM dlq_recovery_queue {condition} "
    sql += f"{RECOVERY_KEYS.order_by} LIMIT ?"
    with store.snapshot() as execute:
        rows = execute(sql, (*params, check_limit(limit) + 1)).fetchall()
    entries = [RecoveryEntry(*row) for row in rows]
    return RECOVERY_KEYS.page(entries, limit, lambda e: (e.updated_at, e.job_id), status)
