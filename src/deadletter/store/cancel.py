"""Cancelling jobs that wait to run, in SQL both backends share (see failures.py).

A job is cancelled by removing it with its attempts, in the transaction of its audit
record (ops/cancel.py), as prune.py removes a succeeded one. Only a job that waits
(queued, scheduled or waiting for its retry) and has no history an operator acts on
goes: none of its failures recorded, never requeued, not adopted from another job
system. Those stay and are refused, so nothing the failure views, the recovery queue
or the counters of migration 0006 (failed jobs only) count is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from deadletter.store.failures import Execute
from deadletter.store.query import Clause, marks, where


@dataclass(frozen=True, slots=True)
class WaitingJob:
    id: str
    queue: str
    task: str
    status: str
    attempts: int
    run_at: float


CANCELLABLE = (
    "j.status IN ('queued', 'retrying') AND j.requeues = 0"
    " AND NOT EXISTS (SELECT 1 FROM dlq_failures f WHERE f.job_id = j.id)"
    " AND NOT EXISTS (SELECT 1 FROM job_origins o WHERE o.job_id = j.id)"
)
SELECT_WAITING = "SELECT j.id, j.queue, j.task, j.status, j.attempts, j.run_at FROM queue_jobs j"
STATUS = "SELECT status FROM queue_jobs WHERE id = ?"
DELETE_ATTEMPTS = "DELETE FROM job_attempts WHERE job_id = ?"
# The status is checked again by the delete itself: a job a worker leased since it was
# read (now running) stays.
DELETE_JOB = "DELETE FROM queue_jobs WHERE id = ? AND status IN ('queued', 'retrying')"


def cancellable(execute: Execute, clauses: list[Clause], limit: int) -> list[WaitingJob]:
    """Up to `limit` cancellable jobs meeting `clauses`, the soonest to run first."""
    sql, params = where([(CANCELLABLE, ()), *clauses])
    rows = execute(f"{SELECT_WAITING} {sql} ORDER BY j.run_at, j.id LIMIT ?", (*params, limit))
    return [WaitingJob(*row) for row in rows.fetchall()]


def with_ids(job_ids: list[str]) -> Clause:
    return f"j.id IN ({marks(job_ids)})", tuple(job_ids)


def status(execute: Execute, job_id: str) -> str | None:
    row = execute(STATUS, (job_id,)).fetchone()
    return None if row is None else str(row[0])


def remove(execute: Execute, job_id: str) -> bool:
    """Remove a waiting job and its attempts; False when it no longer waits."""
    if execute(DELETE_JOB, (job_id,)).rowcount != 1:
        return False
    execute(DELETE_ATTEMPTS, (job_id,))
    return True
