"""Riding out an outage of the store: one log line when it begins, one when it ends,
and retries paced by a capped backoff in between.

The cap is short on purpose: work must resume within a second of the database
accepting connections again, and one failed connection attempt a few times a second
costs the database nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from deadletter.errors import StoreUnavailable

log = logging.getLogger("deadletter.worker")

FIRST_DELAY = 0.05
MAX_DELAY = 0.5


class Outage:
    """The state of the store as this worker last found it: reachable, or away since when."""

    def __init__(self) -> None:
        self.since: float | None = None
        self._delay = FIRST_DELAY

    def failed(self, exc: StoreUnavailable, stop: threading.Event) -> None:
        """Note a failed store call and wait before the next try (less if `stop` is set)."""
        if self.since is None:
            self.since = time.monotonic()
            self._delay = FIRST_DELAY
            log.error("store unavailable, waiting for it (jobs are kept): %s", exc)
        else:
            self._delay = min(self._delay * 2, MAX_DELAY)
        stop.wait(self._delay)

    def succeeded(self) -> None:
        """Note a store call that worked: ends the outage, if one was on."""
        if self.since is not None:
            lasted = time.monotonic() - self.since
            self.since = None
            log.warning("store available again after an outage of %.1f s", lasted)
