"""Delivering the outbox: user notifications and ops alerts, retried until sent.

Rows are written by the handler in its transaction; this side claims due rows,
sends them through Apprise, and records the result. A row that fails for a reason of
its own is retried with backoff (10 s doubling, capped at an hour) and stays visible
with its last error: never dropped.

An outage of a receiver is nobody's row's failure. Each outbox has its receiver (the
alert targets; the user notification targets) and a breaker (breaker.py) for it. A
send that fails with `ReceiverUnavailable` (no connection, a timeout, HTTP 5xx or 429)
is only a sign: one row alone cannot tell a receiver that is down from a target of its
own that is broken (one user's address refused, one path answering 500). So the row
waits, unsettled, for the next row sent: if that one fails the same way too, the
receiver is down, the breaker opens and the batch goes back uncharged; if the
receiver takes it, or refuses it for a reason of its own, the first row's failure was
its own and it is charged its backoff. A row that fails so last in its batch (another
worker may hold the rest) goes back uncharged, and the next row sent, in a later pass,
tells: another failing so opens the breaker; the same row failing so again, with no
other between, is charged.

While a breaker is open its outbox is not sent: its due rows wait, uncharged and due,
and a probe sends the oldest of them with backoff (0.5 s doubling to 5 s); a row the
probe could not send goes behind the others, so the next probe tries another. Once a
probe goes through, every waiting row is sent at once. A row that failed a probe and
fails so again once the receiver is back is at fault itself (two users' broken
targets side by side look like an outage once): it is charged, and counts toward no
outage, until it is sent.

A row goes to every target of its receiver (the alert targets are often several: Slack
and PagerDuty, say) and remembers those that took it (store/outbox.py): a retry, a probe
and the drain after an outage send it only to the targets it is still owed, so one
target failing never has the others sent it again. A target removed from the
configuration since is owed nothing (the row is sent once the others took it); one
added is owed every row not yet sent. A send is judged by the targets it still owed:
one that failed on any of them as if it were down is a sign, even when the others took
it. That they took it says they are up, not that the failed one is; and that one is
the same for every alert, so charging the row would count the target's outage as the
row's failure and hold the row off it up to an hour after it is back. So two such
sends in a row open the breaker, as before; while it is open each probe still
delivers its row to the targets that are up, once, and goes through only when its row
reached every target it owed: when the failed target is back. Meanwhile the rows
raised during the outage reach the targets that are up one probe at a time, oldest
first, since a row a probe could not send goes behind the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from deadletter.breaker import Breaker, OutageNotice, Wording
from deadletter.config import DlqSettings
from deadletter.errors import DeadletterError, DeliveryError, ReceiverUnavailable
from deadletter.events import EventLog
from deadletter.notify.deliver import AppriseChannel, user_target
from deadletter.redact import Redactor
from deadletter.store.base import Store
from deadletter.store.outbox import Delivery, Outbox

BATCH = 50
CLAIM_SECONDS = 60.0
# A send is not begun on a claim with less than this left: it could run out mid-send
# (Apprise waits up to 10 s per target), and another dispatcher send the row again.
CLAIM_MARGIN = 30.0
# After a receiver's outage, batches are sent one after another for up to this long
# before the other periodic duties get their turn.
DRAIN_SECONDS = 10.0
MAX_BACKOFF = 3600.0

RECEIVERS = {Outbox.ALERTS: "alert receiver", Outbox.NOTIFICATIONS: "user notification receiver"}
WAITING = Wording(
    waiting="User notifications",
    held="No notification is sent or charged an attempt",
    resumed="the waiting notifications are sent",
)

_Failed = tuple[Delivery, ReceiverUnavailable]


@dataclass
class Dispatcher:
    store: Store
    alerts: AppriseChannel | None
    user_url_template: str
    events: EventLog
    redactor: Redactor
    alert_window: float = 900.0
    breakers: dict[Outbox, Breaker] = field(init=False)
    # Rows a probe could not send (outbox, id), till they are sent: see the docstring.
    _failed_probes: set[tuple[Outbox, str]] = field(default_factory=set, init=False)
    # Per outbox, the row that failed as if its receiver were down last in its batch,
    # while the receiver has answered no row since.
    _alone: dict[Outbox, str] = field(default_factory=dict, init=False)

    @classmethod
    def build(
        cls, store: Store, settings: DlqSettings, events: EventLog, redactor: Redactor
    ) -> Dispatcher:
        alerts = AppriseChannel(settings.alert_urls) if settings.alert_urls else None
        template, window = settings.user_url_template, settings.alert_window_seconds
        return cls(store, alerts, template, events, redactor, alert_window=window)

    def __post_init__(self) -> None:
        self.breakers = {outbox: self._breaker(outbox) for outbox in Outbox}

    def _breaker(self, outbox: Outbox) -> Breaker:
        # The alert receiver's own outage raises no ops alert: it would wait for its end.
        alerts = None if outbox is Outbox.ALERTS else self.store
        notice = OutageNotice(self.events, "delivery", WAITING, alerts, self.redactor)
        return Breaker(RECEIVERS[outbox], lambda: self._probe(outbox), notice.began, notice.ended)

    def deliver_due(self) -> int:
        """Send what is due in both outboxes whose receiver is up, summaries of ended
        alert windows first; return how many were sent."""
        for summary in self.store.summarise_alerts(now=time.time(), window=self.alert_window):
            self.events.emit("alert.summarised", id=summary)
        return sum(self._drain(outbox) for outbox in Outbox)

    def probe(self) -> None:
        """Probe each receiver found down, with backoff (a periodic duty); deliver what
        waited at once when one is back."""
        back = False
        for breaker in self.breakers.values():
            if not breaker.closed:
                breaker.probe_if_due()
                back = back or breaker.closed
        if back:
            self.deliver_due()

    def _drain(self, outbox: Outbox) -> int:
        sent = 0
        until = time.monotonic() + DRAIN_SECONDS
        while self.breakers[outbox].closed and time.monotonic() < until:
            batch = self.store.claim_deliveries(
                outbox, now=time.time(), limit=BATCH, claim_seconds=CLAIM_SECONDS
            )
            sent += self._send_batch(batch)
            if len(batch) < BATCH:
                break
        return sent

    def _send_batch(self, batch: Sequence[Delivery]) -> int:
        """Send each claimed row in turn; return how many were sent. Two rows in a row
        that could not reach their receiver open its breaker, and every row not settled
        goes back uncharged."""
        sent = 0
        held: _Failed | None = None  # failed as if the receiver were down, unsettled
        for index, delivery in enumerate(batch):
            before = [held[0]] if held else []
            if time.time() > delivery.claimed_until - CLAIM_MARGIN:
                self.store.release_deliveries([*before, *batch[index:]], due=None)
                return sent
            delivery, error = self._try(delivery)
            sign = self._outage_sign(delivery, error)
            if sign and (held or self._alone.get(delivery.outbox, delivery.id) != delivery.id):
                self._alone.pop(delivery.outbox, None)
                self.breakers[delivery.outbox].trip(sign)
                self.store.release_deliveries([*before, delivery, *batch[index + 1 :]], due=None)
                return sent
            if held:  # the receiver answered this row: the held row's failure was its own
                self._settle(*held)
            held = (delivery, sign) if sign else None
            sent += 0 if sign else self._settle(delivery, error)
        if held:
            self._left_alone(*held)
        return sent

    def _left_alone(self, delivery: Delivery, sign: ReceiverUnavailable) -> None:
        """A row failed as if its receiver were down, last in its batch: given back
        uncharged for the next row sent to tell, or charged if it fails so again."""
        if self._alone.get(delivery.outbox) == delivery.id:
            self._settle(delivery, sign)
            return
        self._alone[delivery.outbox] = delivery.id
        self.store.release_deliveries([delivery], due=None)

    def _outage_sign(
        self, delivery: Delivery, error: DeadletterError | None
    ) -> ReceiverUnavailable | None:
        """The row's failure if it is a sign of its receiver's outage."""
        if (delivery.outbox, delivery.id) in self._failed_probes:
            return None
        return error if isinstance(error, ReceiverUnavailable) else None

    def _probe(self, outbox: Outbox) -> None:
        """Send the oldest due row of `outbox` as a probe; raise while its receiver stays
        unreachable. None due: another dispatcher sends them, so the receiver is back."""
        claimed = self.store.claim_deliveries(
            outbox, now=time.time(), limit=1, claim_seconds=CLAIM_SECONDS
        )
        for claimed_row in claimed:
            delivery, error = self._try(claimed_row)
            if isinstance(error, ReceiverUnavailable):
                # Uncharged, and due behind the other waiting rows: the next probe sends
                # another, so that one row's broken target does not hold the outbox shut.
                self.store.release_deliveries([delivery], due=time.time())
                self._failed_probes.add((outbox, delivery.id))
                raise error
            self._settle(delivery, error)

    def _try(self, delivery: Delivery) -> tuple[Delivery, DeadletterError | None]:
        """Send the row to the targets it is still owed: the row with those that took it
        added to its delivered ones, and why it failed."""
        try:
            reached = self._send(delivery)
        except DeliveryError as exc:
            return delivery.reached(exc.delivered), exc
        except DeadletterError as exc:
            return delivery, exc
        return delivery.reached(reached), None

    def _settle(self, delivery: Delivery, error: DeadletterError | None) -> bool:
        """Record a send's outcome, a failure charged with its backoff; whether it was sent."""
        now = time.time()
        retry_at = now + min(MAX_BACKOFF, 10.0 * 2**delivery.attempts)
        message = None if error is None else str(error)
        self.store.settle_delivery(delivery, now=now, error=message, retry_at=retry_at)
        if error is None:
            self._failed_probes.discard((delivery.outbox, delivery.id))
        if not isinstance(error, ReceiverUnavailable):  # the receiver answered
            self._alone.pop(delivery.outbox, None)
        self.events.emit(
            "delivery.sent" if error is None else "delivery.failed",
            outbox=delivery.outbox.value,
            id=delivery.id,
            attempt=delivery.attempts + 1,
            error=message,
        )
        return error is None

    def _send(self, delivery: Delivery) -> tuple[str, ...]:
        """Send to the targets the row is still owed; its channel's targets, which all have it."""
        body = delivery.body
        if delivery.occurrences > 1:
            body += f"\n({delivery.occurrences} occurrences so far in this alert's window)"
        channel = self._channel(delivery)
        channel.send(title=delivery.title, body=body, skip=delivery.delivered)
        return channel.targets

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
