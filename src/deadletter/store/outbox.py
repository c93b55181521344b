"""Notifications and alerts waiting for delivery: claimed, sent, settled.

Shared SQL (see failures.py). A worker claims due rows by pushing their next
attempt into the future, so two workers do not send the same row at once; a send
that fails is retried later, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from deadletter.store.failures import Execute


class Outbox(StrEnum):
    NOTIFICATIONS = "user_notifications"
    ALERTS = "ops_alerts"


@dataclass(frozen=True, slots=True)
class Delivery:
    outbox: Outbox
    id: str
    user_id: str | None
    title: str
    body: str
    attempts: int
    occurrences: int


DUE = {
    Outbox.NOTIFICATIONS: """
        SELECT id, user_id, title, message, attempts, 1 FROM user_notifications
        WHERE status = 'pending' AND next_attempt_at <= ?
        ORDER BY next_attempt_at LIMIT ?""",
    Outbox.ALERTS: """
        SELECT id, NULL, title, body, attempts, occurrences FROM ops_alerts
        WHERE status = 'pending' AND next_attempt_at <= ?
        ORDER BY next_attempt_at LIMIT ?""",
}

CLAIM = "UPDATE {table} SET next_attempt_at = ? WHERE id = ? AND next_attempt_at <= ?"
SENT = {
    Outbox.NOTIFICATIONS: """
        UPDATE user_notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1
        WHERE id = ?""",
    Outbox.ALERTS: """
        UPDATE ops_alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1,
            reported = ?
        WHERE id = ?""",
}
RETRY = """
UPDATE {table} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?
"""


def claim(
    execute: Execute, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
) -> list[Delivery]:
    rows = execute(DUE[outbox], (now, limit)).fetchall()
    claimed = []
    for row in rows:
        taken = execute(CLAIM.format(table=outbox.value), (now + claim_seconds, row[0], now))
        if taken.rowcount == 1:
            claimed.append(Delivery(outbox, row[0], row[1], row[2], row[3], row[4], row[5]))
    return claimed


def settle(
    execute: Execute, delivery: Delivery, *, now: float, error: str | None, retry_at: float
) -> None:
    if error is None:
        reported = (delivery.occurrences,) if delivery.outbox is Outbox.ALERTS else ()
        execute(SENT[delivery.outbox], (now, *reported, delivery.id))
    else:
        table = delivery.outbox.value
        execute(RETRY.format(table=table), (error[:1000], retry_at, delivery.id))


# Sent alerts whose window is over and that counted occurrences after they went out.
UNREPORTED = """
SELECT id, fingerprint, title, occurrences, reported FROM ops_alerts
WHERE status = 'sent' AND occurrences > reported AND created_at <= ?
"""
MARK_REPORTED = "UPDATE ops_alerts SET reported = ? WHERE id = ? AND reported = ?"
SUMMARY = """
INSERT INTO ops_alerts (id, kind, fingerprint, title, body, status, next_attempt_at, created_at)
VALUES (?, 'summary', ?, ?, ?, 'pending', ?, ?)
ON CONFLICT (id) DO NOTHING
"""


def summarise(execute: Execute, *, now: float, window: float) -> list[str]:
    """Queue a summary alert for each sent alert that counted more occurrences in its
    window; the summaries' ids. Idempotent: a summary is keyed by what it reports."""
    summaries = []
    for alert_id, fingerprint, title, occurrences, reported in execute(
        UNREPORTED, (now - window,)
    ).fetchall():
        if execute(MARK_REPORTED, (occurrences, alert_id, reported)).rowcount != 1:
            continue  # another worker summarised it first
        summary_id = f"summary-{alert_id}-{occurrences}"
        body = (
            f"{occurrences - reported} more occurrence(s) after this alert was sent,"
            f" within {window / 60:g} minutes of it ({occurrences} in all):\n{title}"
        )
        execute(SUMMARY, (summary_id, fingerprint, f"Summary: {title}", body, now, now))
        summaries.append(summary_id)
    return summaries
