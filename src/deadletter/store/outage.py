"""How a party that uses the store (a worker, a server) logs the store's outages: one
line when the store stops answering and one, with the outage's length, when it answers
again, however many calls fail in between. Thread-safe: a server's requests and its
probes report to one log."""

from __future__ import annotations

import logging
import threading
import time


class OutageLog:
    """The store as its party last found it: reachable, or away since when (monotonic)."""

    def __init__(self, log: logging.Logger, *, began: str, ended: str) -> None:
        """`began` is logged with the error (`%s`), `ended` with the seconds (`%.1f`)."""
        self.since: float | None = None
        self._log, self._began, self._ended = log, began, ended
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> bool:
        """Note a call the store did not answer; whether it began an outage."""
        with self._lock:
            if self.since is not None:
                return False
            self.since = time.monotonic()
        self._log.error(self._began, one_line(exc))
        return True

    def succeeded(self) -> None:
        """Note a call the store answered: ends the outage, if one was on."""
        with self._lock:
            if self.since is None:
                return
            lasted, self.since = time.monotonic() - self.since, None
        self._log.warning(self._ended, lasted)


def one_line(exc: BaseException) -> str:
    """`exc` on one line (libpq's messages run over several), or its type if it is blank:
    the outage is one line of the log."""
    return " ".join(str(exc).split()) or type(exc).__name__
