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
SENT = "UPDATE {table} SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?"
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
    table = delivery.outbox.value
    if error is None:
        execute(SENT.format(table=table), (now, delivery.id))
    else:
        execute(RETRY.format(table=table), (error[:1000], retry_at, delivery.id))
