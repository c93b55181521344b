"""The begins writer (worker/begins.py): slots record begins, one thread writes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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


def test_the_begin_of_a_task_that_ended_before_it_was_taken_up_is_not_written(
    store: Store,
) -> None:
    """Its outcome follows: the begin would only cost a write (and, on PostgreSQL, row
    locks the outcome's write waits for). A worker lost before the outcome is written
    leaves it uncharged, as any begin not written yet."""
    leases = _leased(store, 4)
    store.release([leases[3]], now=time.time())
    begins = Begins(store)
    for lease in leases:
        begins.record(lease)
    begins.ended(leases[1])
    begins.ended(Lease(leases[2].job_id, leases[2].token + 1))  # another run's: kept
    begins.start()
    try:
        lost = begins.lost.get(timeout=10)  # reported once the batch is written
    finally:
        begins.close()

    assert lost == leases[3]
    reclaimed = store.reclaim_expired(limit=10, now=time.time() + 10, lease_seconds=30)
    assert sorted(item.job.id for item in reclaimed) == ["j0", "j2"]


def test_begins_and_other_writes_of_the_same_rows_from_two_threads_do_not_deadlock(
    store: Store,
) -> None:
    """The begins writer writes while the worker's main thread extends the same rows,
    each batch locking its rows in its own order: neither may wait for the other while
    holding a row the other waits for."""
    leases = _leased(store, 20)
    failures: list[BaseException] = []

    def write(action: Callable[[list[Lease]], list[Lease]], ordered: list[Lease]) -> None:
        try:
            for _ in range(40):
                assert action(ordered) == []
        except BaseException as exc:  # the test's finding, reported below
            failures.append(exc)

    def begin(ordered: list[Lease]) -> list[Lease]:
        return store.begin(ordered, now=time.time())

    def extend(ordered: list[Lease]) -> list[Lease]:
        return store.extend(ordered, until=time.time() + 30)

    threads = [
        threading.Thread(target=write, args=(begin, leases)),
        threading.Thread(target=write, args=(extend, leases[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
