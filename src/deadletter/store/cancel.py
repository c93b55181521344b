"""Cancelling jobs, in SQL both backends share (see failures.py).

A job is cancelled by removing it with its attempts, as prune.py removes a succeeded
one: a waiting job (queued, scheduled or waiting for its retry) in the transaction of
its audit record (ops/cancel.py); a running one once its run has ended after it was
told to stop (worker/loop.py), its run asked to stop by the lease token it runs under
(migration 0017). Only a job with no history an operator acts on goes: none of its
failures recorded, never requeued, not adopted from another job system. Those stay and
are refused, so nothing the failure views, the recovery queue or the counters of
migration 0006 (failed jobs only) count is touched. Nor is a dead letter cancelled,
waiting or running: it is the failure of its job, which stays dead-lettered, and would
be lost with it (the DLQ handler takes letters in batches and is not cut halfway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deadletter.model import Lease
from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.store.failures import Execute
from deadletter.store.query import Clause, equal, marks, where


@dataclass(frozen=True, slots=True)
class WaitingJob:
    id: str
    queue: str
    task: str
    status: str
    attempts: int
    run_at: float


CANCELLABLE = (
    f"j.status IN ('queued', 'retrying', 'running') AND j.task <> '{DEAD_LETTER_TASK}'"
    " AND j.requeues = 0"
    " AND NOT EXISTS (SELECT 1 FROM dlq_failures f WHERE f.job_id = j.id)"
    " AND NOT EXISTS (SELECT 1 FROM job_origins o WHERE o.job_id = j.id)"
)
SELECT_WAITING = "SELECT j.id, j.queue, j.task, j.status, j.attempts, j.run_at FROM queue_jobs j"
STATUS = "SELECT status FROM queue_jobs WHERE id = ?"
DELETE_ATTEMPTS = "DELETE FROM job_attempts WHERE job_id = ?"
# The status is checked again by the delete itself: a job a worker leased since it was
# read (now running) stays.
DELETE_JOB = "DELETE FROM queue_jobs WHERE id = ? AND status IN ('queued', 'retrying')"
# The run asked to stop is the one of the lease held now: a job that ended meanwhile is
# left as it ended.
ASK_TO_STOP = "UPDATE queue_jobs SET cancel_token = lease_token WHERE id = ? AND status = 'running'"
ASKED = "SELECT id, cancel_token FROM queue_jobs WHERE cancel_token IS NOT NULL AND id IN ({})"
# Fenced as any outcome of a run: a lease taken over since removes nothing.
DELETE_STOPPED = "DELETE FROM queue_jobs WHERE id = ? AND lease_token = ? AND status = 'running'"


def cancellable(execute: Execute, clauses: list[Clause], limit: int) -> list[WaitingJob]:
    """Up to `limit` cancellable jobs meeting `clauses`, the soonest to run first."""
    sql, params = where([(CANCELLABLE, ()), *clauses])
    rows = execute(f"{SELECT_WAITING} {sql} ORDER BY j.run_at, j.id LIMIT ?", (*params, limit))
    return [WaitingJob(*row) for row in rows.fetchall()]


def with_ids(job_ids: list[str]) -> Clause:
    return f"j.id IN ({marks(job_ids)})", tuple(job_ids)


def of_queue(queue: str) -> Clause:
    return equal("j.queue", queue)


def of_task(task: str) -> Clause:
    return equal("j.task", task)


def status(execute: Execute, job_id: str) -> str | None:
    row = execute(STATUS, (job_id,)).fetchone()
    return None if row is None else str(row[0])


def remove(execute: Execute, job_id: str) -> bool:
    """Remove a waiting job and its attempts; False when it no longer waits."""
    return _removed(execute, execute(DELETE_JOB, (job_id,)).rowcount, job_id)


def ask_to_stop(execute: Execute, job_id: str) -> bool:
    """Ask the run of a running job to stop; False when the job no longer runs."""
    return execute(ASK_TO_STOP, (job_id,)).rowcount == 1


def asked_to_stop(execute: Execute, leases: Sequence[Lease]) -> list[Lease]:
    """Those of `leases` whose run was asked to stop."""
    held = set(leases)
    rows = execute(ASKED.format(marks(leases)), tuple(lease.job_id for lease in leases))
    return [lease for lease in (Lease(str(i), int(t)) for i, t in rows.fetchall()) if lease in held]


def remove_stopped(execute: Execute, lease: Lease) -> bool:
    """Remove a job whose run ended after it was told to stop, and its attempts; False
    when its lease was taken over."""
    deleted = execute(DELETE_STOPPED, (lease.job_id, lease.token)).rowcount
    return _removed(execute, deleted, lease.job_id)


def _removed(execute: Execute, deleted: int, job_id: str) -> bool:
    if deleted != 1:
        return False
    execute(DELETE_ATTEMPTS, (job_id,))
    return True
