"""A circuit breaker for one component the DLQ handler writes to (the blob store).

An outage of a component is not a letter's failure: while the breaker is open the
handler takes no letters (the worker leaves the dead-letter queues out of its lease)
and a periodic duty probes the component, with a backoff doubling up to a cap. The
breaker reports each change once: `on_open` when the outage begins, `on_close` with
its duration when it ends; one pair of ops alerts per outage, not one per letter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
