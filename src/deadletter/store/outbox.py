"""Notifications and alerts waiting for delivery: claimed, sent, settled.

Shared SQL (see failures.py). A dispatcher claims due rows by setting their
`claimed_until` (migration 0023), so two dispatchers do not send the same row at once;
the claim is apart from the row's due time, so a row being sent never looks like one
waiting on its backoff. The claim's value is its token: a row is settled or given back
only by the dispatcher that still holds it. A send that fails is retried later, never
dropped. A row keeps the names of the targets it was delivered to (`delivered_to`,
migration 0031), written as it is settled or given back, so that a retry owes it only to
the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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
    delivered: frozenset[str]  # the targets that took it: a retry is not sent to them

    def reached(self, targets: Iterable[str]) -> Delivery:
        """The row, delivered to `targets` too."""
        return replace(self, delivered=self.delivered | frozenset(targets))


# Due, and not claimed by a dispatcher that is sending it (or whose claim ran out).
UNCLAIMED = "status = 'pending' AND next_attempt_at <= ? AND coalesce(claimed_until, 0) <= ?"
DUE = {
    Outbox.NOTIFICATIONS: f"""
        SELECT id, user_id, title, message, attempts, 1, delivered_to FROM user_notifications
        WHERE {UNCLAIMED} ORDER BY next_attempt_at LIMIT ?""",
    Outbox.ALERTS: f"""
        SELECT id, NULL, title, body, attempts, occurrences, delivered_to FROM ops_alerts
        WHERE {UNCLAIMED} ORDER BY next_attempt_at LIMIT ?""",
}

CLAIM = f"UPDATE {{table}} SET claimed_until = ? WHERE id = ? AND {UNCLAIMED}"
SENT = {
    Outbox.NOTIFICATIONS: """
        UPDATE user_notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1,
            delivered_to = ?, claimed_until = NULL
        WHERE id = ? AND claimed_until = ?""",
    Outbox.ALERTS: """
        UPDATE ops_alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1,
            delivered_to = ?, reported = ?, claimed_until = NULL
        WHERE id = ? AND claimed_until = ?""",
}
RETRY = """
UPDATE {table} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
    delivered_to = ?, claimed_until = NULL
WHERE id = ? AND claimed_until = ?
"""
# Given back uncharged: its attempts and last error stay, and it is due as it was, or at
# `due` when given; the targets it reached before its receiver failed are kept.
RELEASE = """
UPDATE {table} SET claimed_until = NULL, next_attempt_at = coalesce(?, next_attempt_at),
    delivered_to = ?
WHERE id = ? AND claimed_until = ?
"""


def claim(
    execute: Execute, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
) -> list[Delivery]:
    rows = execute(DUE[outbox], (now, now, limit)).fetchall()
    until = now + claim_seconds
    claimed = []
    for row_id, user_id, title, body, attempts, occurrences, delivered in rows:
        taken = execute(CLAIM.format(table=outbox.value), (until, row_id, now, now))
        if taken.rowcount == 1:
            row = (row_id, user_id, title, body, attempts, occurrences, until, targets(delivered))
            claimed.append(Delivery(outbox, *row))
    return claimed


def targets(delivered_to: str | None) -> frozenset[str]:
    """The targets a row was delivered to, from its `delivered_to`."""
    return frozenset(json.loads(delivered_to)) if delivered_to else frozenset()


def _delivered_to(delivery: Delivery) -> str | None:
    return json.dumps(sorted(delivery.delivered)) if delivery.delivered else None


def settle(
    execute: Execute, delivery: Delivery, *, now: float, error: str | None, retry_at: float
) -> None:
    delivered, token = _delivered_to(delivery), (delivery.id, delivery.claimed_until)
    if error is None:
        reported = (delivery.occurrences,) if delivery.outbox is Outbox.ALERTS else ()
        execute(SENT[delivery.outbox], (now, delivered, *reported, *token))
    else:
        params = (error[:1000], retry_at, delivered, *token)
        execute(RETRY.format(table=delivery.outbox.value), params)


def give_back(execute: Execute, deliveries: Sequence[Delivery], *, due: float | None) -> None:
    for delivery in deliveries:
        params = (due, _delivered_to(delivery), delivery.id, delivery.claimed_until)
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
