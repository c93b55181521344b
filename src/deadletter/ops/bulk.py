"""Bulk requeue or abandon by filter: a dry run first, then a paced, stoppable run.

Safety, in the order an operator meets it:
- the filter is exactly what is acted on, and an empty one (every failure) is refused
  unless `all=True` is passed: never all by accident;
- `plan_bulk` counts the jobs that would move and shows a sample, with the same query
  the run uses;
- the run is paced (jobs per second, like SQS redrive velocity) so that a recovered
  downstream is not flooded, reports progress, can be paused, resumed and cancelled
  from another thread, and halts by itself when the jobs it re-drove fail again.

A bulk action applies to jobs that are failed now, by their latest failure: a job whose
older failure matches but which failed differently since is not moved. Abandoned jobs
are left alone (requeue one on its own to override an abandon).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from threading import Event
from typing import Any

from deadletter.errors import InvalidRequest
from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.failures import (
    KEYS,
    FailureItem,
    failure_item,
    failure_key,
    fetch_failures,
)
from deadletter.ops.filters import (
    FailureFilter,
    operator_text,
    required,
)
from deadletter.ops.recovery import (
    ActionResult,
    Policy,
    Request,
    abandon_in,
    requeue_in,
)
from deadletter.store.base import Store
from deadletter.store.failure_reads import CURRENT, count_failures
from deadletter.store.failures import Execute
from deadletter.store.query import Clause
from deadletter.store.recovery import bulk_outcomes


class BulkAction(StrEnum):
    REQUEUE = "requeue"
    ABANDON = "abandon"


START_ACTIONS = {
    BulkAction.REQUEUE: AuditAction.BULK_REQUEUE,
    BulkAction.ABANDON: AuditAction.BULK_ABANDON,
}


@dataclass(frozen=True, slots=True)
class BulkPlan:
    """A dry run: how many jobs would move, and the first few of them."""

    count: int
    sample: list[FailureItem]


def bulk_clauses(failure_filter: FailureFilter, *, all: bool = False) -> list[Clause]:
    return [CURRENT, *checked_clauses(failure_filter, all=all)]


def checked_clauses(
    failure_filter: FailureFilter, *, all: bool, matches: str = "every failure"
) -> list[Clause]:
    """The filter's clauses; refused when it is empty (it `matches` all) unless `all`."""
    if failure_filter.is_empty and not all:
        raise InvalidRequest(
            "filter", f"is empty, so it matches {matches}; pass all=True to mean that"
        )
    return failure_filter.clauses()


def plan_bulk(
    store: Store, failure_filter: FailureFilter, *, all: bool = False, sample_size: int = 10
) -> BulkPlan:
    clauses = bulk_clauses(failure_filter, all=all)
    with store.snapshot() as execute:
        return BulkPlan(
            count_failures(execute, clauses),
            [failure_item(row) for row in fetch_failures(execute, clauses, limit=sample_size)],
        )


class StopReason(StrEnum):
    DONE = "done"
    CANCELLED = "cancelled"
    HALTED = "halted"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """Where a run is. `settled` re-driven jobs have run since (succeeded or failed);
    `failing` of them failed again (retrying, dead-lettered or failed)."""

    run_id: int | None
    action: BulkAction
    planned: int
    moved: int
    skipped: int
    settled: int
    failing: int
    paused: bool


@dataclass(frozen=True, slots=True)
class BulkResult:
    progress: BulkProgress
    stopped: StopReason
    detail: str


# A paced run moves jobs in ticks of this many seconds' worth, so that a high rate costs
# a few transactions a second rather than one per job.
TICK = 0.1


class Pacer:
    """A token bucket: `rate` tokens a second while running, spent `burst` at a time."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = float(burst), time.monotonic()

    def delay(self) -> float:
        """Seconds until a whole burst is there; 0 when it is."""
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        return max(0.0, (self.burst - self.tokens) / self.rate)

    def spend(self) -> int:
        self.tokens -= self.burst
        return self.burst

    def resumed(self) -> None:
        """Nothing accrues while paused: resuming must not release a flood."""
        self.last = time.monotonic()


class BulkRun:
    """Requeue or abandon every job matching a filter; `run()` blocks until it stops.

    `pause`, `resume` and `cancel` may be called from any thread. A requeue run halts
    when more than `halt_ratio` of its re-driven jobs that have run since failed again,
    once at least `halt_after` have run; it checks every `check_interval` seconds.
    `policy` gives a queue's retry budget (`App.policy`)."""

    def __init__(
        self,
        store: Store,
        failure_filter: FailureFilter,
        *,
        action: BulkAction,
        actor: str,
        reason: str,
        policy: Policy,
        all: bool = False,
        rate: float = 10.0,
        batch_size: int = 100,
        halt_ratio: float = 0.25,
        halt_after: int = 20,
        check_interval: float = 1.0,
        on_progress: Callable[[BulkProgress], None] | None = None,
    ) -> None:
        if rate <= 0:
            raise InvalidRequest("rate", f"must be above 0 jobs a second, got {rate}")
        if batch_size < 1:
            raise InvalidRequest("batch_size", f"must be at least 1, got {batch_size}")
        self.store, self.filter, self.action, self.policy = store, failure_filter, action, policy
        self.actor = required(actor, "actor")
        self.reason = operator_text(required(reason, "reason"))
        self.clauses = bulk_clauses(failure_filter, all=all)
        self.pacer = Pacer(rate, max(1, min(batch_size, round(rate * TICK))))
        self.halt_ratio, self.halt_after = halt_ratio, halt_after
        self.check_interval = check_interval
        self.on_progress = on_progress
        self._cancel, self._running = Event(), Event()
        self._running.set()
        self._run_id: int | None = None
        self._planned = self._moved = self._skipped = self._settled = self._failing = 0
        self._checked = time.monotonic()

    # -- control, from any thread ------------------------------------------------------

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()  # wake a paused run so that it can stop

    @property
    def progress(self) -> BulkProgress:
        return BulkProgress(
            self._run_id,
            self.action,
            self._planned,
            self._moved,
            self._skipped,
            self._settled,
            self._failing,
            paused=not self._running.is_set(),
        )

    # -- the run -----------------------------------------------------------------------

    def run(self) -> BulkResult:
        self._start()
        try:
            stopped, detail = self._drive()
        except BaseException as exc:
            self._finish(StopReason.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        self._finish(stopped, detail)
        return BulkResult(self.progress, stopped, detail)

    def _start(self) -> None:
        # Counted in a read: a long count must not hold SQLite's write lock.
        with self.store.snapshot() as execute:
            self._planned = count_failures(execute, self.clauses)
        action = START_ACTIONS[self.action]
        details = {
            "filter": self.filter.to_json(),
            "planned": self._planned,
            "rate": self.pacer.rate,
        }
        with self.store.transaction() as execute:
            self._run_id = self._record(execute, action, time.time(), details)

    def _drive(self) -> tuple[StopReason, str]:
        cursor: str | None = None
        while self._wait_turn():
            batch = self._next(cursor, self.pacer.spend())
            if not batch:
                return StopReason.DONE, f"every matching job was handled ({self._moved} moved)"
            cursor = KEYS.cursor(failure_key(batch[-1]))
            self._apply(batch)
            if self.on_progress is not None:
                self.on_progress(self.progress)
            halted = self._halt_reason()
            if halted:
                return StopReason.HALTED, halted
        return StopReason.CANCELLED, f"cancelled after {self._moved} moved"

    def _wait_turn(self) -> bool:
        """Wait while paused and for the pace; False when cancelled."""
        while not self._cancel.is_set():
            if not self._running.is_set():
                self._running.wait()
                self.pacer.resumed()
                continue
            delay = self.pacer.delay()
            if delay == 0:
                return True
            self._cancel.wait(delay)
        return False

    def _next(self, cursor: str | None, limit: int) -> list[FailureItem]:
        with self.store.snapshot() as execute:
            rows = fetch_failures(execute, [*self.clauses, *KEYS.after(cursor)], limit=limit)
        return [failure_item(row) for row in rows]

    def _apply(self, batch: list[FailureItem]) -> None:
        request = Request(self.actor, self.reason, time.time(), self._run_id)
        with self.store.transaction() as execute:
            results = [self._act(execute, item.job_id, request) for item in batch]
        moved = sum(result.done for result in results)
        self._moved += moved
        self._skipped += len(results) - moved

    def _act(self, execute: Execute, job_id: str, request: Request) -> ActionResult:
        if self.action is BulkAction.ABANDON:
            return abandon_in(execute, job_id, request)
        return requeue_in(execute, job_id, request, policy=self.policy, skip_abandoned=True)

    def _halt_reason(self) -> str | None:
        """Why the run should stop: its re-driven jobs are failing again."""
        if self.action is not BulkAction.REQUEUE:
            return None
        if time.monotonic() - self._checked < self.check_interval:
            return None
        self._checked = time.monotonic()
        with self.store.snapshot() as execute:
            self._settled, self._failing = bulk_outcomes(execute, self._run_id)
        if self._settled < self.halt_after or self._failing <= self.halt_ratio * self._settled:
            return None
        return (
            f"{self._failing} of the {self._settled} re-driven jobs that ran since failed"
            f" again (over {self.halt_ratio:.0%}): the downstream may still be broken"
        )

    def _finish(self, stopped: StopReason, detail: str) -> None:
        progress = self.progress
        details = {
            "run": self._run_id,
            "stopped": stopped.value,
            "detail": detail,
            "moved": progress.moved,
            "skipped": progress.skipped,
            "settled": progress.settled,
            "failing": progress.failing,
        }
        with self.store.transaction() as execute:
            self._record(execute, AuditAction.BULK_STOPPED, time.time(), details)

    def _record(
        self, execute: Execute, action: AuditAction, at: float, details: dict[str, Any]
    ) -> int:
        return audit.record(
            execute,
            at=at,
            actor=self.actor,
            action=action,
            target=self.filter.describe(),
            reason=self.reason,
            details=details,
        )
