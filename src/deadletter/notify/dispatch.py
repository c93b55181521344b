"""Delivering the outbox: user notifications and ops alerts, retried until sent.

Rows are written by the handler in its transaction; this side claims due rows,
sends them through Apprise, and records the result. A failed send is retried with
backoff (capped at an hour) and stays visible with its last error: never dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from deadletter.config import DlqSettings
from deadletter.errors import DeadletterError
from deadletter.events import EventLog
from deadletter.notify.deliver import AppriseChannel, user_target
from deadletter.store.base import Store
from deadletter.store.outbox import Delivery, Outbox

BATCH = 50
CLAIM_SECONDS = 60.0
MAX_BACKOFF = 3600.0


@dataclass
class Dispatcher:
    store: Store
    alerts: AppriseChannel | None
    user_url_template: str
    events: EventLog
    alert_window: float = 900.0

    @classmethod
    def build(cls, store: Store, settings: DlqSettings, events: EventLog) -> Dispatcher:
        alerts = AppriseChannel(settings.alert_urls) if settings.alert_urls else None
        return cls(store, alerts, settings.user_url_template, events, settings.alert_window_seconds)

    def deliver_due(self) -> int:
        """Send what is due in both outboxes, summaries of ended alert windows first;
        return how many were sent."""
        for summary in self.store.summarise_alerts(now=time.time(), window=self.alert_window):
            self.events.emit("alert.summarised", id=summary)
        sent = 0
        for outbox in Outbox:
            now = time.time()
            due = self.store.claim_deliveries(
                outbox, now=now, limit=BATCH, claim_seconds=CLAIM_SECONDS
            )
            sent += sum(self._deliver(delivery) for delivery in due)
        return sent

    def _deliver(self, delivery: Delivery) -> bool:
        error = None
        try:
            self._send(delivery)
        except DeadletterError as exc:
            error = str(exc)
        now = time.time()
        retry_at = now + min(MAX_BACKOFF, 10.0 * 2**delivery.attempts)
        self.store.settle_delivery(delivery, now=now, error=error, retry_at=retry_at)
        self.events.emit(
            "delivery.sent" if error is None else "delivery.failed",
            outbox=delivery.outbox.value,
            id=delivery.id,
            attempt=delivery.attempts + 1,
            error=error,
        )
        return error is None

    def _send(self, delivery: Delivery) -> None:
        body = delivery.body
        if delivery.occurrences > 1:
            body += f"\n({delivery.occurrences} occurrences so far in this alert's window)"
        self._channel(delivery).send(title=delivery.title, body=body)

    def _channel(self, delivery: Delivery) -> AppriseChannel:
        if delivery.outbox is Outbox.ALERTS:
            if self.alerts is None:
                raise DeadletterError("no alert targets configured: set [dlq] alert_urls")
            return self.alerts
        if not self.user_url_template:
            raise DeadletterError(
                "no user notification target configured: set [dlq] user_url_template"
            )
        return AppriseChannel([user_target(self.user_url_template, delivery.user_id or "")])
