"""Jobs a worker finished, by queue, as rates over each heartbeat interval: what the
queues page shows as throughput, summed over the live workers (store/fleet.py).

Counting happens on the worker's own thread as outcomes are written; the heartbeat,
on the periodic thread, turns the counts since the previous beat into rates. A lock
keeps the two from tearing a count between them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from deadletter.store.fleet import QueueRate


class QueueRates:
    def __init__(self, now: float) -> None:
        self._lock = threading.Lock()
        # queue -> [succeeded, failed] since the last beat.
        self._counts: dict[str, list[int]] = {}
        self._since = now

    def add(self, finished: Iterable[tuple[str, bool]]) -> None:
        """`finished`: (queue, succeeded) for each attempt whose outcome was written."""
        with self._lock:
            for queue, succeeded in finished:
                counts = self._counts.setdefault(queue, [0, 0])
                counts[0 if succeeded else 1] += 1

    def take(self, now: float) -> dict[str, QueueRate]:
        """Rates per second since the previous call (or the start), and start again."""
        with self._lock:
            counts, self._counts = self._counts, {}
            elapsed, self._since = now - self._since, now
        if elapsed <= 0:
            return {}
        return {
            queue: QueueRate(succeeded / elapsed, failed / elapsed)
            for queue, (succeeded, failed) in counts.items()
        }
