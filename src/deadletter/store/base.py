"""The store contract: the few primitives every backend implements atomically.

Policy (when to retry, how long to wait, what counts as permanent) lives above
this contract, in the worker. Atomicity lives below it: leasing, fencing, and
moving a job to its dead-letter queue in the same transaction as its status.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from deadletter.errors import InvalidArgument
from deadletter.model import (
    Attempt,
    FailureRecord,
    HostEvent,
    Job,
    JobState,
    JSONValue,
    Lease,
    LeasedJob,
    NewJob,
    Origin,
)
from deadletter.store.failures import Execute, Recorded
from deadletter.store.fleet import QueuePause, WorkerPresence
from deadletter.store.group import GroupCommit
from deadletter.store.outbox import Delivery, Outbox
from deadletter.store.reports import DlqStats, FailureRow
from deadletter.store.rows import Row, loads

if TYPE_CHECKING:
    import sqlite3

    import psycopg

DEAD_LETTER_TASK = "deadletter.dead_letter"

# The caller's own open connection, for an enqueue in the caller's transaction: a
# sqlite3 connection to the SQLite store's file, a psycopg (3) one for PostgreSQL.
CallerConnection: TypeAlias = "sqlite3.Connection | psycopg.Connection[Any]"


@dataclass(frozen=True, slots=True)
class Succeeded:
    lease: Lease
    finished_at: float


@dataclass(frozen=True, slots=True)
class Retrying:
    lease: Lease
    attempt: Attempt
    run_at: float


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """Retries are exhausted, or the failure is permanent: move to the DLQ."""

    lease: Lease
    attempt: Attempt
    reason: str
    dlq_max_retries: int
    poison: bool = False  # quarantined: it may be what kills its workers (worker/retry.py)


JobOutcome = Succeeded | Retrying | DeadLettered


@dataclass(frozen=True, slots=True)
class LostLease:
    """A running job whose worker stopped heartbeating, taken over by the reclaimer.
    `began_at`: when the lost attempt began (store `begin`), the start of its record."""

    job: LeasedJob
    lost_worker: str
    began_at: float


class Store(Protocol):
    """Jobs, attempts and dead letters, on one database."""

    url: str
    # What `enqueue` goes through: concurrent calls share a commit (store/group.py).
    group_commit: GroupCommit
    # Whether a write from a second thread runs beside this one's, not after it: then the
    # worker writes outcomes on a thread of their own (worker/writes.py).
    concurrent_writes: bool

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied."""
        ...

    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        """Insert jobs in one transaction, durably committed on return; a known idempotency
        key returns the existing id. Concurrent calls may share the transaction (group
        commit); a call whose row the database refuses raises InvalidArgument naming it,
        and fails no other call."""
        ...

    def enqueue_in(self, connection: CallerConnection, jobs: Sequence[NewJob]) -> list[str]:
        """Insert jobs with the caller's open `connection`, in its current transaction, as
        `enqueue` does: they exist if and only if the caller commits, which wakes the
        workers. Neither commits nor rolls back. InvalidArgument, before anything is
        written, for a connection of another driver or database, or one that would
        commit the jobs on their own (autocommit outside a transaction)."""
        ...

    def lease(
        self,
        queues: Sequence[str],
        *,
        limit: int,
        worker: str,
        now: float,
        lease_seconds: float,
        letters: int = 0,
    ) -> list[LeasedJob]:
        """Up to `limit` ready jobs of `queues`: first up to `letters` dead letters (task
        DEAD_LETTER_TASK), then the rest by priority and age, dead letters included."""
        ...

    def reclaim_expired(self, *, limit: int, now: float, lease_seconds: float) -> list[LostLease]:
        """Jobs whose lease expired: those whose attempt never began go back to their
        queue uncharged, in their place; the rest are taken over under a new token by
        the caller, which records the lost attempt (the owner's name is kept: a
        reclaimer lost before it records the attempt is not blamed for it)."""
        ...

    def extend(self, leases: Sequence[Lease], *, until: float) -> list[Lease]:
        """Heartbeat: push lease expiry; return the leases that are no longer ours."""
        ...

    def begin(self, leases: Sequence[Lease], *, now: float) -> list[Lease]:
        """Record that the leased jobs' attempts begin (their tasks start next): only such
        an attempt is charged when its lease expires. Return the leases no longer ours."""
        ...

    def finish(self, outcomes: Sequence[JobOutcome], *, now: float) -> set[str]:
        """Apply outcomes in one transaction; return ids applied (others were fenced out)."""
        ...

    def release(self, leases: Sequence[Lease], *, now: float) -> int:
        """Give leases back without counting the attempt (graceful shutdown)."""
        ...

    def transaction(self) -> AbstractContextManager[Execute]:
        """One write transaction for SQL written once for both backends, with `?`
        placeholders (see failures.py): committed on success, rolled back on error."""
        ...

    def snapshot(self) -> AbstractContextManager[Execute]:
        """One read-only transaction, for consistent reads that hold up no writer."""
        ...

    def record_failures(
        self, records: Sequence[FailureRecord], *, now: float, alert_window: float
    ) -> Recorded:
        """Mark jobs failed, store failure rows, groups and routes; idempotent per letter."""
        ...

    def record_host_events(self, events: Sequence[HostEvent], *, now: float) -> list[str]:
        """Failed attempts, give-ups and successes of another job system's messages, in one
        transaction; a give-up dead-letters its job with its whole history, as `finish`
        does for a native job. Idempotent per event; returns the ids dead-lettered."""
        ...

    def origin(self, job_id: str) -> Origin | None:
        """Where an adopted job came from; None for a native job."""
        ...

    def prepare_send(self, system: str, message_id: str, job_id: str) -> bool:
        """Record that host message `message_id` re-drives `job_id`; whether it was
        already sent (by an earlier run of the same re-drive)."""
        ...

    def mark_sent(self, system: str, message_id: str, *, at: float) -> None: ...

    def add_alert(self, *, alert_id: str, kind: str, title: str, body: str, now: float) -> None: ...

    def claim_deliveries(
        self, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
    ) -> list[Delivery]: ...

    def settle_delivery(
        self, delivery: Delivery, *, now: float, error: str | None, retry_at: float
    ) -> None:
        """Record a claimed row's send: sent, or failed and due again at `retry_at`, an
        attempt charged. A row whose claim ran out and was taken over is left as it is."""
        ...

    def release_deliveries(self, deliveries: Sequence[Delivery], *, due: float | None) -> None:
        """Give claimed rows back unsent and uncharged (their receiver is down), due as
        they were, or at `due`; rows taken over since are left as they are."""
        ...

    def summarise_alerts(self, *, now: float, window: float) -> list[str]:
        """Queue summaries of what sent alerts counted in after they went out."""
        ...

    def dlq_stats(self, *, now: float) -> DlqStats: ...

    def recent_failures(self, *, limit: int) -> list[FailureRow]: ...

    def next_due(self, queues: Sequence[str]) -> float | None:
        """When work on `queues` may next be leasable: the earliest ready time of a waiting
        job or the earliest expiry of a running lease; None when nothing is pending."""
        ...

    def get_job(self, job_id: str) -> Job | None: ...

    def list_jobs(
        self, *, queue: str | None = None, state: JobState | None = None, limit: int = 50
    ) -> list[Job]: ...

    def attempts(self, job_id: str) -> list[Attempt]: ...

    def count_states(self) -> dict[tuple[str, JobState], int]: ...

    def wait_for_work(self, queues: Sequence[str], timeout: float, stop: threading.Event) -> None:
        """Block until work may be ready on `queues`, `timeout` passes, or `stop` is set."""
        ...

    # -- the fleet (store/fleet.py) ---------------------------------------------------

    def pause_queue(self, pause: QueuePause) -> bool:
        """Stop leasing the queue's jobs (enqueueing goes on); False if paused already."""
        ...

    def resume_queue(self, queue: str) -> bool:
        """Lease the queue's jobs again; False if it was not paused."""
        ...

    def paused_queues(self) -> dict[str, QueuePause]: ...

    def beat_worker(self, worker: WorkerPresence, *, forget_before: float) -> None:
        """Register or refresh a worker; forget workers silent since `forget_before`."""
        ...

    def drop_worker(self, name: str) -> None: ...

    def live_workers(self, *, since: float) -> list[WorkerPresence]:
        """Workers whose last heartbeat is at `since` or later."""
        ...

    def waiting_jobs(self) -> dict[str, int]:
        """Jobs queued or retrying by queue, that a worker here is to run."""
        ...

    # -- periodic jobs (store/schedules.py) -------------------------------------------

    def schedule_ticks(self, names: Sequence[str]) -> dict[str, int]:
        """The last tick (epoch seconds) dealt with of each of `names` that has started."""
        ...

    def start_schedule(self, name: str, *, at: int) -> int:
        """Start `name` with `at` as its last tick unless it has started; its last tick."""
        ...

    def advance_schedule(self, name: str, *, after: int, to: int, job: NewJob | None) -> bool:
        """Move the last tick of `name` from `after` to `to`, and insert `job` (the tick's,
        None for ticks skipped) in the same transaction; False, with nothing written, when
        its last tick is no longer `after` (another scheduler moved it)."""
        ...

    # -- retention (store/prune.py) --------------------------------------------------

    def prune_finished(self, queue: str, *, before: float, limit: int) -> int:
        """Remove up to `limit` succeeded jobs and handled dead letters of `queue`
        completed before `before`, with their attempts, in one transaction; how many."""
        ...

    def prune_stats_minutes(self, *, now: float) -> int:
        """Remove the DLQ statistics' per-minute counts that the last day's count, at
        `now` or later, no longer reads; how many rows went."""
        ...

    def close(self) -> None: ...


def dead_letter_payload(
    row: Row, history: Iterable[Attempt], reason: str, *, poison: bool
) -> dict[str, JSONValue]:
    """What a dead letter carries: the job as it was and its whole attempt history."""
    return {
        "job_id": row["id"],
        "queue": row["queue"],
        "task": row["task"],
        "payload": loads(row["payload"]),
        "labels": loads(row["labels"]),
        "created_at": row["created_at"],
        "reason": reason,
        "poison": poison,
        "attempts": [attempt.to_json() for attempt in history],
    }


def dead_letter_id(job_id: str, attempt_seq: int) -> str:
    """Deterministic, so that a dead letter written twice is written once."""
    return f"dl-{job_id}-{attempt_seq}"


def wrong_connection(store: str, problem: str) -> InvalidArgument:
    """The error of an enqueue in the caller's transaction given a connection `store`
    cannot use; nothing was written."""
    return InvalidArgument(f"enqueue with connection=: {store}: {problem}")


def kind_of(value: object) -> str:
    """`value`'s type, by its full name: sqlite3.Connection, psycopg.Connection."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"
