"""Read-side SQL for operators, shared by both backends (see failures.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from deadletter.store.failures import Execute
from deadletter.store.query import LATEST_FAILURE
from deadletter.store.rows import load_labels

# The seed's statistics, each defined in docs/operations.md, from the counters that
# triggers keep (migration 0006): summed over the shards, they are what a count over every
# failed job would say, at any number of failures. last_24h is exact: the minutes after
# the one holding the window's start, then that minute's failed jobs from the index.
STATS = """
SELECT sum(failed), sum(retries), sum(held), sum(pending), sum(requeued), sum(recovered),
    sum(abandoned),
    (SELECT coalesce(sum(jobs), 0) FROM dlq_stats_minutes WHERE minute > ?),
    (SELECT count(*) FROM queue_jobs
     WHERE status = 'failed' AND completed_at >= ? AND completed_at < ?)
FROM dlq_stats_counters
"""

RECOVERY_STATUSES = ("pending", "requeued", "recovered", "abandoned")
DAY = 86_400
# The counters' minutes are floor(completed_at) / 60, in integers.
MINUTE = 60

# Failed jobs by their latest failure, newest first, in the order of the operators'
# failure list (ops/filters.py): walking the (failed_at, dead_letter_id) index
# backwards reads no more rows than the page needs. Every failed job has a failure:
# the handler sets the status in the transaction that records it.
RECENT_FAILURES = f"""
SELECT j.id, j.queue, j.task, j.labels, j.last_error, j.attempts, j.created_at, j.completed_at,
       f.error_class, f.rule, f.fingerprint, f.error_message, f.forensics_key
FROM dlq_failures f
JOIN queue_jobs j ON j.id = f.job_id
WHERE j.status = 'failed' AND {LATEST_FAILURE}
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
    since = now - DAY
    # A job counts in the minute floor(completed_at) // 60: the minutes after `edge` hold
    # only jobs completed since, and those of `edge` itself are counted one by one.
    edge = math.floor(since) // MINUTE
    row = execute(STATS, (edge, since, float((edge + 1) * MINUTE))).fetchone()
    failed, retries, held, *recovery, later, in_edge = (int(value) for value in row)
    return DlqStats(
        total_failed=failed,
        permanent_failures=failed - held,
        last_24h=later + in_edge,
        avg_retries=round(retries / failed, 2) if failed else 0.0,
        recovery=dict(zip(RECOVERY_STATUSES, recovery, strict=True)),
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
        job_id,
        queue,
        task,
        load_labels(labels),
        last_error,
        attempts,
        created_at,
        completed_at,
        error_class,
        rule,
        fingerprint,
        error_message,
        forensics_key,
    )
