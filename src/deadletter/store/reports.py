"""Read-side SQL for operators, shared by both backends (see failures.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deadletter.store.failures import Execute
from deadletter.store.rows import loads

# The seed's statistics; every figure is defined in docs/operations.md.
STATS = """
SELECT
    count(*),
    coalesce(sum(CASE WHEN r.status IS NULL OR r.status NOT IN ('pending', 'requeued')
                      THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN j.completed_at >= ? THEN 1 ELSE 0 END), 0),
    avg(j.attempts - 1)
FROM queue_jobs j
LEFT JOIN dlq_recovery_queue r ON r.job_id = j.id
WHERE j.status = 'failed'
"""

RECOVERY_STATUSES = ("pending", "requeued", "recovered", "abandoned")
RECOVERY_COUNTS = "SELECT status, count(*) FROM dlq_recovery_queue GROUP BY status"

# Failed jobs by their latest failure, newest first, in the order of the operators'
# failure list (ops/filters.py): walking the (failed_at, dead_letter_id) index
# backwards reads no more rows than the page needs. Every failed job has a failure:
# the handler sets the status in the transaction that records it.
RECENT_FAILURES = """
SELECT j.id, j.queue, j.task, j.labels, j.last_error, j.attempts, j.created_at, j.completed_at,
       f.error_class, f.rule, f.fingerprint, f.error_message, f.forensics_key
FROM dlq_failures f
JOIN queue_jobs j ON j.id = f.job_id
WHERE j.status = 'failed' AND NOT EXISTS (
    SELECT 1 FROM dlq_failures later
    WHERE later.job_id = f.job_id AND (later.failed_at > f.failed_at
        OR (later.failed_at = f.failed_at AND later.dead_letter_id > f.dead_letter_id)))
ORDER BY f.failed_at DESC, f.dead_letter_id DESC
LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class DlqStats:
    total_failed: int
    permanent_failures: int
    last_24h: int
    avg_retries: float
    recovery: dict[str, int]


def dlq_stats(execute: Execute, *, now: float) -> DlqStats:
    total, permanent, recent, avg = execute(STATS, (now - 86_400,)).fetchone()
    counts = {status: n for status, n in execute(RECOVERY_COUNTS, ()).fetchall()}
    return DlqStats(
        total_failed=int(total),
        permanent_failures=int(permanent),
        last_24h=int(recent),
        avg_retries=round(float(avg or 0.0), 2),
        recovery={s: int(counts.get(s, 0)) for s in RECOVERY_STATUSES},
    )


@dataclass(frozen=True, slots=True)
class FailureRow:
    job_id: str
    queue: str
    task: str
    labels: dict[str, str]
    last_error: str | None
    attempts: int
    created_at: float
    completed_at: float | None
    error_class: str | None
    rule: str | None
    fingerprint: str | None
    error_message: str | None
    forensics_key: str | None


def recent_failures(execute: Execute, *, limit: int) -> list[FailureRow]:
    rows = execute(RECENT_FAILURES, (limit,)).fetchall()
    return [_failure_row(row) for row in rows]


def _failure_row(row: tuple[Any, ...]) -> FailureRow:
    job_id, queue, task, labels, last_error, attempts, created_at, completed_at, *rest = row
    error_class, rule, fingerprint, error_message, forensics_key = rest
    return FailureRow(
        job_id, queue, task, loads(labels), last_error, attempts, created_at, completed_at,
        error_class, rule, fingerprint, error_message, forensics_key,
    )
