"""Recording handled dead letters: SQL that reads the same on SQLite and PostgreSQL.

Unlike the leasing hot path, these statements are plain ANSI SQL plus
`ON CONFLICT`, which both databases share; they are written once with `?`
placeholders, and the PostgreSQL store translates them. Every statement is
idempotent per dead letter: the failure row's primary key decides whether the
rest runs, so a dead letter delivered twice is recorded, routed and alerted once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deadletter.model import FailureRecord, Route


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Execute = Callable[[str, tuple[Any, ...]], Cursor]

INSERT_FAILURE = """
INSERT INTO dlq_failures (dead_letter_id, job_id, queue, task, error_class, rule, fingerprint,
    error_type, error_message, http_status, retry_count, reason, labels, forensics_key,
    created_at, failed_at, handled_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dead_letter_id) DO NOTHING
"""

# Step 1 of the seed's handler: the job's status becomes failed.
MARK_FAILED = "UPDATE queue_jobs SET status = 'failed' WHERE id = ? AND status = 'dead_lettered'"

GROUP_EXISTS = "SELECT 1 FROM dlq_error_groups WHERE fingerprint = ?"

UPSERT_GROUP = """
INSERT INTO dlq_error_groups (fingerprint, error_class, error_type, sample_message, queue,
    count, first_seen, last_seen)
VALUES (?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (fingerprint) DO UPDATE SET count = dlq_error_groups.count + 1,
    last_seen = excluded.last_seen
"""

# A job that failed again after a requeue comes back to its own recovery row.
UPSERT_RECOVERY = """
INSERT INTO dlq_recovery_queue (job_id, dead_letter_id, queue, status, created_at, updated_at)
VALUES (?, ?, ?, 'pending', ?, ?)
ON CONFLICT (job_id) DO UPDATE SET status = 'pending',
    dead_letter_id = excluded.dead_letter_id, updated_at = excluded.updated_at
"""

INSERT_NOTIFICATION = """
INSERT INTO user_notifications (id, job_id, user_id, title, message, status, next_attempt_at,
    created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""

INSERT_REVIEW = """
INSERT INTO dlq_review_log (dead_letter_id, job_id, fingerprint, created_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (dead_letter_id) DO NOTHING
"""

# Alerts about one fingerprint within the window are folded into the first one;
# poison alerts only into poison alerts, so that a quarantine is never hidden.
RECENT_ALERT = """
SELECT id FROM ops_alerts
WHERE fingerprint = ? AND kind IN ('system_error', 'new_failure', 'poison')
    AND (kind = 'poison') = ? AND created_at >= ?
ORDER BY created_at DESC
LIMIT 1
"""

COUNT_INTO_ALERT = "UPDATE ops_alerts SET occurrences = occurrences + 1 WHERE id = ?"

INSERT_ALERT = """
INSERT INTO ops_alerts (id, kind, fingerprint, title, body, status, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
ON CONFLICT (id) DO NOTHING
"""


@dataclass
class Recorded:
    """What one call recorded: new failures (not seen before) and new fingerprints."""

    new: list[str] = field(default_factory=list)
    new_fingerprints: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def record_failures(
    execute: Execute, records: Sequence[FailureRecord], *, now: float, alert_window: float
) -> Recorded:
    recorded = Recorded()
    for record in records:
        if execute(INSERT_FAILURE, _failure_params(record, now)).rowcount != 1:
            continue
        recorded.new.append(record.dead_letter_id)
        execute(MARK_FAILED, (record.job_id,))
        is_new = execute(GROUP_EXISTS, (record.fingerprint,)).fetchone() is None
        execute(UPSERT_GROUP, _group_params(record))
        if is_new:
            recorded.new_fingerprints.append(record.fingerprint)
        _route(execute, record, now)
        if is_new or record.poison or record.route is Route.ALERT_OPS:
            alert = _alert(execute, record, is_new, now, alert_window)
            if alert:
                recorded.alerts.append(alert)
    return recorded


def insert_alert(
    execute: Execute, *, alert_id: str, kind: str, title: str, body: str, now: float
) -> None:
    """An alert not tied to one failure (parked dead letters, fired thresholds)."""
    execute(INSERT_ALERT, (alert_id, kind, None, title, body, now, now))


def _route(execute: Execute, record: FailureRecord, now: float) -> None:
    if record.route is Route.RECOVERY:
        execute(UPSERT_RECOVERY, (record.job_id, record.dead_letter_id, record.queue, now, now))
    elif record.route is Route.NOTIFY_USER:
        status = "pending" if record.user_id else "no_user"
        title = f"We could not complete your {record.task} request"
        message = record.user_message or record.summary
        execute(
            INSERT_NOTIFICATION,
            (
                record.dead_letter_id,
                record.job_id,
                record.user_id,
                title,
                message,
                status,
                now,
                now,
            ),
        )
    elif record.route is Route.REVIEW:
        execute(INSERT_REVIEW, (record.dead_letter_id, record.job_id, record.fingerprint, now))


def _alert(
    execute: Execute, record: FailureRecord, is_new: bool, now: float, window: float
) -> str | None:
    recent = execute(RECENT_ALERT, (record.fingerprint, record.poison, now - window)).fetchone()
    if recent is not None:
        execute(COUNT_INTO_ALERT, (recent[0],))
        return None
    kind, what = _alert_kind(record, is_new)
    title = f"{what} on {record.queue}: {record.error_class.value}"
    body = (
        f"{record.summary}\nreason: {record.reason}\n"
        f"queue: {record.queue}  task: {record.task}  job: {record.job_id}\n"
        f"class: {record.error_class.value} (rule {record.rule})  group: {record.fingerprint}"
    )
    alert_id = f"{kind}-{record.dead_letter_id}"
    execute(INSERT_ALERT, (alert_id, kind, record.fingerprint, title, body, now, now))
    return alert_id


def _alert_kind(record: FailureRecord, is_new: bool) -> tuple[str, str]:
    if record.poison:
        return "poison", "Poison job quarantined (it kept killing its worker)"
    if is_new:
        return "new_failure", "New kind of failure"
    return "system_error", "System error"


def _failure_params(r: FailureRecord, now: float) -> tuple[Any, ...]:
    return (
        r.dead_letter_id,
        r.job_id,
        r.queue,
        r.task,
        r.error_class.value,
        r.rule,
        r.fingerprint,
        r.error_type,
        r.error_message,
        r.http_status,
        r.retry_count,
        r.reason,
        json.dumps(r.labels),
        r.forensics_key,
        r.created_at,
        r.failed_at,
        now,
    )


def _group_params(r: FailureRecord) -> tuple[Any, ...]:
    message = (r.error_message or "")[:300]
    return (
        r.fingerprint,
        r.error_class.value,
        r.error_type,
        message,
        r.queue,
        r.failed_at,
        r.failed_at,
    )
