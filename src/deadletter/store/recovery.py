"""Requeue, abandon and the recovery queue, in SQL both backends share (see failures.py).

The functions take the caller's `Execute`: an action, its recovery row and its audit
record share one transaction (ops/recovery.py holds the policy: retries, refusals,
what is audited).
"""

from __future__ import annotations

from dataclasses import dataclass

from deadletter.store.failures import Execute
from deadletter.store.query import Clause, equal


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


@dataclass(frozen=True, slots=True)
class JobStanding:
    """What decides why an action was refused: the job's status, how often it was
    requeued, and its recovery row's status (None without one)."""

    status: str
    requeues: int
    recovery: str | None


# The recovery queue's keyset order: most recently changed first, then by job id.
KEYSET = ("updated_at", "job_id")

JOB_QUEUE = "SELECT queue FROM queue_jobs WHERE id = ?"

REQUEUE_JOB = """
UPDATE queue_jobs
SET status = 'queued', max_retries = attempts + coalesce(task_max_retries, ?), run_at = ?,
    completed_at = NULL, lease_owner = NULL, lease_expires_at = NULL, requeues = requeues + 1
WHERE id = ? AND status = 'failed'
    AND (? OR NOT EXISTS (SELECT 1 FROM dlq_recovery_queue r
                          WHERE r.job_id = queue_jobs.id AND r.status = 'abandoned'))
RETURNING attempts, max_retries
"""
# A no-op write on the job's row: it serialises an abandon with a requeue of the same
# job, and checks in the same step that the job is failed.
LOCK_FAILED = (
    "UPDATE queue_jobs SET requeues = requeues WHERE id = ? AND status = 'failed' RETURNING queue"
)

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

STANDING = """
SELECT j.status, j.requeues, r.status FROM queue_jobs j
LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id
WHERE j.id = ?
"""

# Re-driven jobs of a bulk run that have run since, and those of them that failed again.
BULK_OUTCOMES = """
SELECT count(*),
    coalesce(sum(CASE WHEN j.status IN ('retrying', 'dead_lettered', 'failed')
                      THEN 1 ELSE 0 END), 0)
FROM dlq_recovery_queue r JOIN queue_jobs j ON j.id = r.job_id
WHERE r.bulk_run = ? AND j.status IN ('succeeded', 'retrying', 'dead_lettered', 'failed')
"""

COLUMNS = (
    "job_id, dead_letter_id, queue, status, reason, requeue_count, bulk_run, created_at, updated_at"
)


def job_queue(execute: Execute, job_id: str) -> str | None:
    row = execute(JOB_QUEUE, (job_id,)).fetchone()
    return None if row is None else str(row[0])


def requeue_job(
    execute: Execute, job_id: str, *, retries: int, at: float, abandoned_too: bool
) -> tuple[int, int] | None:
    """Queue a failed job again with `retries` more attempts, at `at`; its attempts and
    new max_retries, or None when it is not failed (or abandoned, unless
    `abandoned_too`)."""
    row = execute(REQUEUE_JOB, (retries, at, job_id, abandoned_too)).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def lock_failed(execute: Execute, job_id: str) -> str | None:
    """Lock a failed job's row for this transaction; its queue, or None if not failed."""
    row = execute(LOCK_FAILED, (job_id,)).fetchone()
    return None if row is None else str(row[0])


def replace_payload(execute: Execute, job_id: str, payload: str, *, at: float, by: str) -> None:
    """Keep the job's payload in its history, then replace it."""
    execute(KEEP_PAYLOAD, (at, by, job_id))
    execute(SET_PAYLOAD, (payload, job_id))


def set_recovery(
    execute: Execute,
    job_id: str,
    *,
    queue: str,
    status: str,
    reason: str,
    requeued: int,
    bulk_run: int | None,
    at: float,
) -> bool:
    """Move the job's recovery row (made if missing, for its latest failure) to `status`,
    adding `requeued` to its count; False when it was abandoned already and `status` is
    abandoned again."""
    params = (job_id, job_id, queue, status, reason, requeued, bulk_run, at, at)
    return execute(UPSERT_RECOVERY, params).fetchone() is not None


def standing(execute: Execute, job_id: str) -> JobStanding | None:
    row = execute(STANDING, (job_id,)).fetchone()
    return None if row is None else JobStanding(row[0], int(row[1]), row[2])


def of_status(status: str) -> Clause:
    return equal("status", status)


def entries(execute: Execute, condition: Clause, order_by: str, limit: int) -> list[RecoveryEntry]:
    """Up to `limit` rows of the recovery queue that meet `condition`, in `order_by`."""
    where, params = condition
    sql = f"SELECT {COLUMNS} FROM dlq_recovery_queue {where} {order_by} LIMIT ?"
    return [RecoveryEntry(*row) for row in execute(sql, (*params, limit)).fetchall()]


def bulk_outcomes(execute: Execute, bulk_run: int | None) -> tuple[int, int]:
    """How many jobs the bulk run re-drove have run since, and how many failed again
    (none for a run not recorded yet, `None`)."""
    settled, failing = execute(BULK_OUTCOMES, (bulk_run,)).fetchone()
    return int(settled), int(failing)
