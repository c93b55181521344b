"""A circuit breaker for one component that work waits on, and what it tells of an outage.

An outage of a component is not the work's failure: while the breaker is open, the
work that needs the component waits uncharged (the DLQ handler takes no letters while
its blob store is down; the dispatcher sends nothing to a notification receiver found
down) and a periodic duty probes the component, with a backoff doubling up to a cap.
The breaker reports each change once: `on_open` when the outage begins, `on_close`
with its duration when it ends. `OutageNotice` turns those into one event (one log
line) and one ops alert each way: one pair per outage, not one per letter or row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from deadletter.events import EventLog
from deadletter.redact import Redactor

FIRST_PROBE_AFTER = 0.5
PROBE_BACKOFF_CAP = 5.0


@dataclass
class Breaker:
    component: str
    probe: Callable[[], None]
    on_open: Callable[[str, float, BaseException], None]
    on_close: Callable[[str, float, float], None]
    clock: Callable[[], float] = time.time
    _opened_at: float | None = field(default=None, init=False)
    _next_probe: float = field(default=0.0, init=False)
    _backoff: float = field(default=FIRST_PROBE_AFTER, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def closed(self) -> bool:
        return self._opened_at is None

    def trip(self, error: BaseException) -> None:
        """The component failed: open the breaker, unless it is open already."""
        with self._lock:
            if self._opened_at is not None:
                return
            now = self.clock()
            self._opened_at = now
            self._backoff = FIRST_PROBE_AFTER
            self._next_probe = now + self._backoff
        self.on_open(self.component, now, error)

    def probe_if_due(self) -> None:
        """Probe an open breaker when its backoff has passed; close it if the probe passes."""
        with self._lock:
            opened_at = self._opened_at
            if opened_at is None or self.clock() < self._next_probe:
                return
        try:
            self.probe()
        except Exception:  # still down: probe again later, less often
            with self._lock:
                self._backoff = min(self._backoff * 2, PROBE_BACKOFF_CAP)
                self._next_probe = self.clock() + self._backoff
            return
        with self._lock:
            self._opened_at = None
        self.on_close(self.component, opened_at, self.clock())


class AlertOutbox(Protocol):
    """Where an outage's ops alerts are written (the store's ops_alerts outbox)."""

    def add_alert(self, *, alert_id: str, kind: str, title: str, body: str, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class Wording:
    """How an outage's alerts speak of the work that waits for the component."""

    waiting: str  # e.g. "Dead letters", as in "Dead letters wait: the blob store is down"
    held: str  # what does not happen meanwhile, e.g. "No dead letter is taken"
    resumed: str  # what happens once it is back, e.g. "the waiting dead letters are handled"


@dataclass(frozen=True, slots=True)
class OutageNotice:
    """A breaker's `on_open` and `on_close`: the event `<prefix>.outage_began` (its one
    log line) and `<prefix>.outage_ended` with the outage's length, and an ops alert of
    kind `outage` each way, unless `alerts` is None (the component is the one alerts go
    out through: such an alert would only wait for the outage's end)."""

    events: EventLog
    prefix: str
    wording: Wording
    alerts: AlertOutbox | None
    redactor: Redactor

    def began(self, component: str, at: float, error: BaseException) -> None:
        self.events.emit(f"{self.prefix}.outage_began", component=component, error=str(error))
        self._alert(
            f"outage-{_slug(component)}-{at:.3f}-began",
            f"{self.wording.waiting} wait: the {component} is down",
            f"The {component} failed: {type(error).__name__}: {error}. {self.wording.held}"
            " until it is back; it is probed with backoff.",
        )

    def ended(self, component: str, began: float, ended: float) -> None:
        seconds = round(ended - began, 3)
        self.events.emit(f"{self.prefix}.outage_ended", component=component, seconds=seconds)
        self._alert(
            f"outage-{_slug(component)}-{began:.3f}-ended",
            f"The {component} is back",
            f"The {component} was down for {ended - began:.1f} s; {self.wording.resumed} now.",
        )

    def _alert(self, alert_id: str, title: str, body: str) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.add_alert(
                alert_id=alert_id,
                kind="outage",
                title=title,
                body=self.redactor.redact_text(body),
                now=time.time(),
            )
        except Exception:  # the database is away too: the event log keeps the outage
            self.events.emit(f"{self.prefix}.alert_failed", kind="outage", alert_id=alert_id)


def _slug(component: str) -> str:
    return component.replace(" ", "-")
