"""A worker that dies while running a job, as the store sees it: a lease that began."""

from __future__ import annotations

import time

from deadletter.model import LeasedJob
from deadletter.store.base import Store
from deadletter.worker.loop import Worker


def began_and_vanished(store: Store, queue: str, *, worker: str, lease_seconds: float) -> LeasedJob:
    """Lease the next job of `queue` for `worker` and begin it; nobody finishes it."""
    now = time.time()
    [job] = store.lease([queue], limit=1, worker=worker, now=now, lease_seconds=lease_seconds)
    assert store.begin([job.lease], now=now) == []
    return job


def lose_workers(store: Store, queue: str, reclaimer: Worker, times: int) -> None:
    """`times` workers in a row begin the next job of `queue` and die running it; each
    lost attempt is recorded by `reclaimer`, as a live worker's reclaim does."""
    for _ in range(times):
        began_and_vanished(store, queue, worker="doomed", lease_seconds=0.01)
        time.sleep(0.02)
        reclaimer.reclaim_expired()
