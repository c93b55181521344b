"""Pruning finished jobs past their queue's retention, in SQL both backends share.

Written once with `?` placeholders, like fleet.py. One call removes one batch, in one
short transaction, so that pruning never holds the write lock (SQLite) or many row
locks (PostgreSQL) long enough to slow leasing; the pacing between batches is the
caller's (worker/prune.py).

What goes: succeeded jobs with no failure of theirs recorded, with their attempts; and
handled dead letters (jobs of the task `deadletter.dead_letter` that succeeded) whose
failure row exists. A failure row, a failed job, and a job that ever failed (a
recovered one) are never touched: they leave only through `archive` and `purge`
(ops/archive.py). The DLQ statistics' counters (migration 0006) count failed jobs
only, so no counter changes here; but their per-minute counts of failed jobs, a row a
minute, are read only for the last day (store/reports.py), and older minutes go too.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.store.failures import Execute
from deadletter.store.query import marks
from deadletter.store.reports import DAY, MINUTE

# The partial index queue_jobs_succeeded (migration 0012) serves the range on
# completed_at; the NOT EXISTS probes use dlq_failures' job and primary key indexes.
PRUNABLE = """
SELECT id FROM queue_jobs j
WHERE j.queue = ? AND j.status = 'succeeded' AND j.completed_at < ?
    AND NOT EXISTS (SELECT 1 FROM dlq_failures f WHERE f.job_id = j.id)
    AND (j.task <> ? OR EXISTS (SELECT 1 FROM dlq_failures f WHERE f.dead_letter_id = j.id))
ORDER BY j.completed_at
LIMIT ?
"""
DELETE_ATTEMPTS = "DELETE FROM job_attempts WHERE job_id IN ({ids})"
DELETE_JOBS = "DELETE FROM queue_jobs WHERE id IN ({ids}) AND status = 'succeeded'"
OLD_MINUTE = "SELECT 1 FROM dlq_stats_minutes WHERE minute < ? LIMIT 1"
DELETE_OLD_MINUTES = "DELETE FROM dlq_stats_minutes WHERE minute < ?"
# Minutes are kept an hour past the day, so that a host whose clock runs ahead does not
# remove one that another, on time, still reads.
MINUTES_MARGIN = 3600


def prune(execute: Execute, queue: str, *, before: float, limit: int, letter_task: str) -> int:
    """Remove up to `limit` jobs of `queue` finished before `before`; how many went."""
    ids = tuple(row[0] for row in execute(PRUNABLE, (queue, before, letter_task, limit)).fetchall())
    if not ids:
        return 0
    execute(DELETE_ATTEMPTS.format(ids=marks(ids)), ids)
    return execute(DELETE_JOBS.format(ids=marks(ids)), ids).rowcount


class PruneMixin:
    """`prune_finished`, the same on both backends, over the backend's transactions.

    Each first reads whether anything is to go: a worker caught up asks every second per
    queue, and on SQLite a write transaction takes the file's write lock even to find
    nothing, so an idle worker frozen at that moment (a debugger, a paused VM) would
    block every producer."""

    def transaction(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def prune_finished(self, queue: str, *, before: float, limit: int) -> int:
        if not self._found(PRUNABLE, (queue, before, DEAD_LETTER_TASK, 1)):
            return 0
        with self.transaction() as execute:
            return prune(execute, queue, before=before, limit=limit, letter_task=DEAD_LETTER_TASK)

    def prune_stats_minutes(self, *, now: float) -> int:
        oldest_kept = math.floor(now - DAY - MINUTES_MARGIN) // MINUTE
        if not self._found(OLD_MINUTE, (oldest_kept,)):
            return 0
        with self.transaction() as execute:
            return execute(DELETE_OLD_MINUTES, (oldest_kept,)).rowcount

    def _found(self, sql: str, params: tuple[object, ...]) -> bool:
        """Whether `sql` finds a row, read without a write transaction (the SQLite store's
        outbox reads first with it too)."""
        with self.snapshot() as execute:
            return execute(sql, params).fetchone() is not None
