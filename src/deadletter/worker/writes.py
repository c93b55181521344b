"""Outcomes written while the worker goes on: the next batch is leased and run while the
last one's outcomes are on their way to the store.

On PostgreSQL a batch's write is a round trip to another process, time the worker's own
thread would otherwise spend waiting: on a thread of its own the write overlaps the next
lease and the next tasks (1.26x the no-op rate: docs/benchmarks.md, "Outcomes written
in the background"). SQLite writes in this process, under the GIL, so a second thread
only adds switches (0.96x): there the write is made at once, inline.

A worker that takes dead letters waits for a batch that writes some before it leases
again (`writes_letters`), so that they are leased ahead of the backlog.

One batch is on its way at a time, and its jobs stay in hand (their leases held) until
the worker settles it: counts them, tells the observers and forgets them; a write that
failed is the worker's to put back and try again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from deadletter.errors import InternalError
from deadletter.store.base import DeadLettered, JobOutcome, Store
from deadletter.worker.slots import Finished


@dataclass(slots=True)
class HandedOutcomes:
    """A batch handed to the writer: what ran, what was decided, and the ids the store
    applied (the rest were fenced out), once written. `writes_letters`: whether writing
    it puts a dead letter on a DLQ."""

    finished: list[Finished]
    outcomes: list[JobOutcome]
    applied: Future[set[str]]
    job_ids: frozenset[str] = field(init=False)
    writes_letters: bool = field(init=False)

    def __post_init__(self) -> None:
        self.job_ids = frozenset(item.job.id for item in self.finished)
        self.writes_letters = any(isinstance(outcome, DeadLettered) for outcome in self.outcomes)


class OutcomeWriter:
    """Writes one batch of outcomes at a time, on its own thread where the store takes
    writes from several threads at once (`Store.concurrent_writes`), else at once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._thread = (
            ThreadPoolExecutor(1, thread_name_prefix="deadletter-outcomes")
            if store.concurrent_writes
            else None
        )
        self._handed: HandedOutcomes | None = None

    @property
    def job_ids(self) -> frozenset[str]:
        """The jobs whose outcomes are on their way (handed and not taken back yet)."""
        return self._handed.job_ids if self._handed is not None else frozenset()

    @property
    def writes_letters(self) -> bool:
        """Whether the batch on its way puts dead letters on a DLQ."""
        return self._handed is not None and self._handed.writes_letters

    def hand(self, finished: list[Finished], outcomes: list[JobOutcome], now: float) -> None:
        """Start writing `outcomes`; the batch handed before must have been taken."""
        if self._handed is not None:
            raise InternalError("the worker handed outcomes before taking back the last ones")
        if self._thread is None:
            applied = _written_now(self._store, outcomes, now)
        else:
            applied = self._thread.submit(self._store.finish, outcomes, now=now)
        self._handed = HandedOutcomes(finished, outcomes, applied)

    def take(self, *, wait: float | None) -> HandedOutcomes | None:
        """The batch handed, once written (or failed), waited for up to `wait` seconds
        (None: until it is); None if there is none, or it is still on its way."""
        handed = self._handed
        if handed is None:
            return None
        try:
            handed.applied.exception(wait)  # raises the wait's timeout, not the write's error
        except TimeoutError:
            return None
        self._handed = None
        return handed

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)


def _written_now(store: Store, outcomes: Sequence[JobOutcome], now: float) -> Future[set[str]]:
    written: Future[set[str]] = Future()
    try:
        written.set_result(store.finish(outcomes, now=now))
    except Exception as exc:  # handed back to the worker, as a failed write on a thread is
        written.set_exception(exc)
    return written
