"""Read-side SQL of the dashboard's overview and groups, shared by both backends.

Each query reads a bounded number of rows whatever the number of failures: counters by
time bucket (migration 0007), partial indexes of the live jobs, or the newest rows of an
index. Written once with `?` placeholders, as in failures.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deadletter.model import FAILURE_ALERT_KINDS
from deadletter.store.failures import Execute
from deadletter.store.outbox import targets
from deadletter.store.query import marks

# Failures by class per point of `step` seconds, from the buckets of `width` seconds
# (step is a multiple of width); the point's start is point * step.
CLASS_SERIES = """
SELECT bucket / CAST(? AS INTEGER), error_class, sum(failures)
FROM dlq_class_buckets
WHERE width = ? AND bucket >= ? AND bucket < ?
GROUP BY 1, 2
"""

GROUP_HOURS = """
SELECT fingerprint, hour, sum(failures)
FROM dlq_group_hours
WHERE fingerprint IN ({marks}) AND hour >= ? AND hour < ?
GROUP BY 1, 2
"""

# Jobs waiting (queued or retrying) by queue, from the lease query's partial index alone:
# `run_at IS NOT NULL` (always true) names a column that only that index holds, which
# steers SQLite's planner to it rather than to a scan of the whole (queue, status)
# index, every job's, which costs ~100 ms at 200,000 failures.
WAITING_JOBS = """
SELECT queue, count(*) FROM queue_jobs
WHERE status IN ('queued', 'retrying') AND run_at IS NOT NULL
GROUP BY queue
"""

# Running jobs by queue, from the reclaimer's partial index of leases; the ordered,
# limited subquery keeps both planners on that index (running jobs are as many as the
# workers' slots, far below the limit). Only running jobs have a lease expiry; saying so
# is what lets PostgreSQL use its index (migration 0025).
RUNNING_JOBS = """
SELECT queue, count(*) FROM (
    SELECT queue FROM queue_jobs
    WHERE status = 'running' AND lease_expires_at IS NOT NULL
    ORDER BY lease_expires_at LIMIT 100000
) AS running
GROUP BY queue
"""

# The oldest dead letter waiting for the handler: how far behind it is now.
OLDEST_WAITING = """
SELECT min(run_at) FROM queue_jobs
WHERE status IN ('queued', 'retrying') AND queue LIKE '%-dlq'
"""

# The handler's recent delays: from a job's last failed attempt to its failure being
# stored, classified and routed, over the newest failures (an index walk, backwards).
RECENT_DELAYS = """
SELECT handled_at - failed_at FROM dlq_failures ORDER BY failed_at DESC LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class Count:
    """`count` things of `key` at the point that starts at `at` (epoch seconds)."""

    at: float
    key: str
    count: int


def class_series(
    execute: Execute, *, width: int, step: int, since: float, until: float
) -> list[Count]:
    """Failures by class per point of `step` seconds from `since` to before `until`, from
    the buckets of `width` seconds."""
    per_point = step // width
    rows = execute(
        CLASS_SERIES, (per_point, width, int(since) // width, int(until) // width)
    ).fetchall()
    return [Count(float(point * step), key, int(n)) for point, key, n in rows]


def group_hours(
    execute: Execute, fingerprints: Sequence[str], *, since: float, until: float
) -> list[Count]:
    """Failures per hour from `since` to before `until` of each group of `fingerprints`."""
    if not fingerprints:
        return []
    sql = GROUP_HOURS.format(marks=marks(fingerprints))
    rows = execute(sql, (*fingerprints, int(since) // 3600, int(until) // 3600)).fetchall()
    return [Count(float(hour * 3600), key, int(n)) for key, hour, n in rows]


def live_jobs(execute: Execute) -> tuple[dict[str, int], dict[str, int]]:
    """Jobs waiting (queued or retrying), and jobs running, by queue."""
    waiting = {queue: int(n) for queue, n in execute(WAITING_JOBS, ()).fetchall()}
    running = {queue: int(n) for queue, n in execute(RUNNING_JOBS, ()).fetchall()}
    return waiting, running


def oldest_waiting(execute: Execute) -> float | None:
    """When the oldest dead letter still waiting for the handler became due."""
    row = execute(OLDEST_WAITING, ()).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def recent_delays(execute: Execute, *, limit: int) -> list[float]:
    return [float(delay) for (delay,) in execute(RECENT_DELAYS, (limit,)).fetchall()]


# What became of one failure's route: the notification (its id is the dead letter's),
# the alert raised for its group up to when it was handled (its own, or one it was
# counted into), and its review-log entry.
NOTIFICATION = "SELECT status, attempts, sent_at, last_error FROM user_notifications WHERE id = ?"
ALERT = f"""
SELECT id, kind, status, occurrences, created_at, sent_at, delivered_to FROM ops_alerts
WHERE kind IN ({marks(FAILURE_ALERT_KINDS)}) AND fingerprint = ? AND created_at <= ?
ORDER BY created_at DESC LIMIT 1
"""
REVIEW = "SELECT reviewed_at, reviewed_by, note FROM dlq_review_log WHERE dead_letter_id = ?"


@dataclass(frozen=True, slots=True)
class NotificationRow:
    status: str
    attempts: int
    sent_at: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: str
    kind: str
    status: str
    occurrences: int
    created_at: float
    sent_at: float | None
    delivered: tuple[str, ...]  # the targets that took it so far


@dataclass(frozen=True, slots=True)
class ReviewRow:
    reviewed_at: float | None
    reviewed_by: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class RouteRows:
    """The rows of a failure's route, each None when there is none."""

    notification: NotificationRow | None
    alert: AlertRow | None
    review: ReviewRow | None


def _alert(row: tuple[Any, ...]) -> AlertRow:
    alert_id, kind, status, occurrences, created_at, sent_at, delivered_to = row
    delivered = tuple(sorted(targets(delivered_to)))
    return AlertRow(alert_id, kind, status, occurrences, created_at, sent_at, delivered)


def route_rows(
    execute: Execute, *, dead_letter_id: str, fingerprint: str, handled_at: float
) -> RouteRows:
    notification = execute(NOTIFICATION, (dead_letter_id,)).fetchone()
    alert = execute(ALERT, (*FAILURE_ALERT_KINDS, fingerprint, handled_at)).fetchone()
    review = execute(REVIEW, (dead_letter_id,)).fetchone()
    return RouteRows(
        notification=NotificationRow(*notification) if notification else None,
        alert=_alert(alert) if alert else None,
        review=ReviewRow(*review) if review else None,
    )
