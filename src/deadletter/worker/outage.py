"""Riding out an outage of the store: one log line when it begins, one when it ends
(store/outage.py), and retries paced by a capped backoff in between.

The cap is short on purpose: work must resume within a second of the database
accepting connections again, and one failed connection attempt a few times a second
costs the database nothing.
"""

from __future__ import annotations

import logging
import threading

from deadletter.errors import StoreUnavailable
from deadletter.store.outage import OutageLog

log = logging.getLogger("deadletter.worker")

FIRST_DELAY = 0.05
MAX_DELAY = 0.5


class Outage:
    """The state of the store as this worker last found it: reachable, or away since when."""

    def __init__(self) -> None:
        self._log = OutageLog(
            log,
            began="store unavailable, waiting for it (jobs are kept): %s",
            ended="store available again after an outage of %.1f s",
        )
        self._delay = FIRST_DELAY

    @property
    def since(self) -> float | None:
        return self._log.since

    def failed(self, exc: StoreUnavailable, stop: threading.Event) -> None:
        """Note a failed store call and wait before the next try (less if `stop` is set)."""
        began = self._log.failed(exc)
        self._delay = FIRST_DELAY if began else min(self._delay * 2, MAX_DELAY)
        stop.wait(self._delay)

    def succeeded(self) -> None:
        """Note a store call that worked: ends the outage, if one was on."""
        self._log.succeeded()
