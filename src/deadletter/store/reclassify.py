"""Re-classifying recorded failures, in SQL both backends share (see failures.py).

ops/reclassify.py reads the current failures (the latest of each failed job that is
not abandoned), asks the handler's rules for each one's class again, and writes here
the ones that moved, in the transaction of their audit records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deadletter.model import ErrorClass, RecordedFailure
from deadletter.store.failure_reads import CURRENT, FAILURES_FROM
from deadletter.store.failures import Execute
from deadletter.store.query import where
from deadletter.store.rows import loads

COLUMNS = """f.dead_letter_id, f.job_id, f.queue, f.task, f.error_class, f.rule, f.fingerprint,
    f.error_type, f.error_message, f.http_status, f.retry_count, f.reason, f.labels,
    f.forensics_key, f.created_at, f.failed_at"""

# Conditional on the class read: a failure moved meanwhile by another run is left alone.
SET_CLASS = """
UPDATE dlq_failures SET error_class = ?, rule = ?
WHERE dead_letter_id = ? AND error_class = ?
"""
# A failure moved off the recovery route leaves the recovery queue, unless it was acted on.
DROP_PENDING_RECOVERY = "DELETE FROM dlq_recovery_queue WHERE job_id = ? AND status = 'pending'"


def current_failures(execute: Execute, *, after: str, limit: int) -> list[RecordedFailure]:
    """Up to `limit` current failures whose dead letter id is above `after`, by id."""
    condition, params = where([CURRENT, ("f.dead_letter_id > ?", (after,))])
    sql = f"SELECT {COLUMNS} {FAILURES_FROM} {condition} ORDER BY f.dead_letter_id LIMIT ?"
    return [_failure(row) for row in execute(sql, (*params, limit)).fetchall()]


def set_class(
    execute: Execute, dead_letter_id: str, *, was: ErrorClass, now: ErrorClass, rule: str
) -> bool:
    """Give the failure its new class; False when its class is no longer `was`."""
    params = (now.value, rule, dead_letter_id, was.value)
    return execute(SET_CLASS, params).rowcount == 1


def drop_pending_recovery(execute: Execute, job_id: str) -> None:
    execute(DROP_PENDING_RECOVERY, (job_id,))


def _failure(row: Sequence[Any]) -> RecordedFailure:
    values = list(row)
    values[4] = ErrorClass(values[4])
    values[12] = loads(values[12])
    return RecordedFailure(*values)
