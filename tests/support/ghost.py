"""A worker that dies while running a job, as the store sees it: a lease that began."""

from __future__ import annotations

import time

from deadletter.model import LeasedJob
from deadletter.store.base import Store


def began_and_vanished(store: Store, queue: str, *, worker: str, lease_seconds: float) -> LeasedJob:
    """Lease the next job of `queue` for `worker` and begin it; nobody finishes it."""
    now = time.time()
    [job] = store.lease([queue], limit=1, worker=worker, now=now, lease_seconds=lease_seconds)
    assert store.begin([job.lease], now=now) == []
    return job
