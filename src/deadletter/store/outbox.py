"""Notifications and alerts waiting for delivery: claimed, sent, settled.

Shared SQL (see failures.py). A dispatcher claims due rows by setting their
`claimed_until` (migration 0023), so two dispatchers do not send the same row at once;
the claim is apart from the row's due time, so a row being sent never looks like one
waiting on its backoff. The claim's value is its token: a row is settled or given back
only by the dispatcher that still holds it. A send that fails is retried later, never
dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    claimed_until: float  # the claim's token: the row is this dispatcher's until then


# Due, and not claimed by a dispatcher that is sending it (or whose claim ran out).
UNCLAIMED = "status = 'pending' AND next_attempt_at <= ? AND coalesce(claimed_until, 0) <= ?"
DUE = {
    Outbox.NOTIFICATIONS: f"""
        SELECT id, user_id, title, message, attempts, 1 FROM user_notifications
        WHERE {UNCLAIMED} ORDER BY next_attempt_at LIMIT ?""",
    Outbox.ALERTS: f"""
        SELECT id, NULL, title, body, attempts, occurrences FROM ops_alerts
        WHERE {UNCLAIMED} ORDER BY next_attempt_at LIMIT ?""",
}

CLAIM = f"UPDATE {{table}} SET claimed_until = ? WHERE id = ? AND {UNCLAIMED}"
SENT = {
    Outbox.NOTIFICATIONS: """
        UPDATE user_notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1,
            claimed_until = NULL
        WHERE id = ? AND claimed_until = ?""",
    Outbox.ALERTS: """
        UPDATE ops_alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1,
            reported = ?, claimed_until = NULL
        WHERE id = ? AND claimed_until = ?""",
}
RETRY = """
UPDATE {table} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
    claimed_until = NULL
WHERE id = ? AND claimed_until = ?
"""
# Given back uncharged: its attempts and last error stay, and it is due as it was, or at
# `due` when given.
RELEASE = """
UPDATE {table} SET claimed_until = NULL, next_attempt_at = coalesce(?, next_attempt_at)
WHERE id = ? AND claimed_until = ?
"""


def claim(
    execute: Execute, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
) -> list[Delivery]:
    rows = execute(DUE[outbox], (now, now, limit)).fetchall()
    until = now + claim_seconds
    claimed = []
    for row_id, user_id, title, body, attempts, occurrences in rows:
        taken = execute(CLAIM.format(table=outbox.value), (until, row_id, now, now))
        if taken.rowcount == 1:
            delivery = Delivery(outbox, row_id, user_id, title, body, attempts, occurrences, until)
            claimed.append(delivery)
    return claimed


def settle(
    execute: Execute, delivery: Delivery, *, now: float, error: str | None, retry_at: float
) -> None:
    if error is None:
        reported = (delivery.occurrences,) if delivery.outbox is Outbox.ALERTS else ()
        execute(SENT[delivery.outbox], (now, *reported, delivery.id, delivery.claimed_until))
    else:
        params = (error[:1000], retry_at, delivery.id, delivery.claimed_until)
        execute(RETRY.format(table=delivery.outbox.value), params)


def give_back(execute: Execute, deliveries: Sequence[Delivery], *, due: float | None) -> None:
    for delivery in deliveries:
        params = (due, delivery.id, delivery.claimed_until)
        execute(RELEASE.format(table=delivery.outbox.value), params)


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
