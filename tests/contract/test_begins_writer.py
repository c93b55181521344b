"""The begins writer (worker/begins.py): slots record begins, one thread writes them."""

from __future__ import annotations

import time

from deadletter.model import Lease, NewJob
from deadletter.store.base import Store
from deadletter.worker.begins import Begins

Q = "begins"


def _leased(store: Store, count: int) -> list[Lease]:
    now = time.time()
    store.enqueue(
        [
            NewJob(f"j{n}", Q, "t", {}, 3, f"{Q}-dlq", run_at=now, created_at=now)
            for n in range(count)
        ]
    )
    found = store.lease([Q], limit=count, worker="w1", now=now, lease_seconds=5)
    return sorted((job.lease for job in found), key=lambda lease: lease.job_id)


def test_recorded_begins_are_written_and_leases_no_longer_ours_are_reported(
    store: Store,
) -> None:
    leases = _leased(store, 3)
    store.release([leases[2]], now=time.time())
    begins = Begins(store)
    begins.start()
    try:
        for lease in leases:
            begins.record(lease)
        lost = begins.lost.get(timeout=10)
    finally:
        begins.close()

    assert lost == leases[2]
    # Begun, the two lost attempts are charged; unbegun, they would go back uncharged.
    reclaimed = store.reclaim_expired(limit=10, now=time.time() + 10, lease_seconds=30)
    assert sorted(item.job.id for item in reclaimed) == ["j0", "j1"]
    assert begins.lost.empty()
