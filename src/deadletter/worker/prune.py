"""Bounded storage: a worker's periodic duty that prunes its queues' finished jobs.

Each queue keeps its succeeded jobs (and a DLQ its handled dead letters) for its
policy's `retention_seconds` (config.py `QueuePolicy`, default a day); older ones go,
with their attempts, a batch per transaction (store/prune.py), with a pause between
batches so that leasing and finishing, which need the same write lock on SQLite and
may wait on the same rows on PostgreSQL, go on in between. One turn stops after a
time budget, so the other duties of the worker's periodic thread stay on time; a
backlog (a first run on a large table) drains over several turns. Once a minute a turn
also drops the DLQ statistics' per-minute counts older than the day they serve.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from deadletter.config import QueuePolicy
from deadletter.store.base import Store
from deadletter.store.reports import MINUTE

log = logging.getLogger(__name__)

# How often a worker prunes, in seconds: with BUDGET, a worker behind prunes nearly all
# the time (a soak at 5,000 jobs/s fell behind pruning 2 s in 5), one caught up asks
# once a second per queue (an index probe).
INTERVAL = 1.0
# Rows per transaction: a few milliseconds of deletes on either backend.
BATCH = 1000
# Between batches: room for the lease and finish transactions waiting on the lock.
PAUSE = 0.01
# Longest a turn goes on, in seconds.
BUDGET = 1.0


@dataclass
class Pruner:
    """Prunes `queues` past their retention each time it is called."""

    store: Store
    queues: Sequence[str]
    policy: Callable[[str], QueuePolicy]
    batch: int = BATCH
    pause: float = PAUSE
    budget: float = BUDGET
    clock: Callable[[], float] = time.time
    _minute_pruned: int = field(default=-1, init=False)

    def __call__(self) -> int:
        """Prune one turn; how many jobs went."""
        now = self.clock()
        deadline = time.monotonic() + self.budget
        removed = 0
        for queue in self.queues:
            before = now - self.policy(queue).retention_seconds
            while True:
                done = self.store.prune_finished(queue, before=before, limit=self.batch)
                removed += done
                if done < self.batch or time.monotonic() >= deadline:
                    break
                time.sleep(self.pause)
        self._prune_stats_minutes(now)
        if removed:
            log.debug("pruned %d finished jobs of %s", removed, ", ".join(self.queues))
        return removed

    def _prune_stats_minutes(self, now: float) -> None:
        # They age by the counters' minute: once a minute is enough, and spares SQLite
        # a write transaction every second.
        minute = int(now) // MINUTE
        if minute != self._minute_pruned:
            self.store.prune_stats_minutes(now=now)
            self._minute_pruned = minute
