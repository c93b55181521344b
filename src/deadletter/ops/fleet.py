"""Running a fleet: pause and resume queues, see the queues and the live workers, and
find queues whose work waits for a consumer that is not there (issue 12).

A pause is a row the lease statements read (store/fleet.py): no worker takes the
queue's jobs from the moment it commits, enqueueing goes on, running jobs finish. A
worker gives back, uncharged, the jobs of a paused queue that it leased ahead and has
not started. A DLQ is a queue like any other: pausing `<queue>-dlq` stops the
handling of its dead letters while they go on being captured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deadletter.model import JobState, JSONObject, is_parked_queue
from deadletter.ops import audit
from deadletter.ops.filters import operator_text, required
from deadletter.store import fleet
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.fleet import QueuePause, QueueRate, WorkerPresence

WAITING_STATES = (JobState.QUEUED, JobState.RETRYING)
# The throughput of a queue no live worker reported finishing anything of.
IDLE = QueueRate(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PauseResult:
    """A pause or resume: `changed` False when the queue already was as asked."""

    queue: str
    paused: bool
    changed: bool
    pause: QueuePause | None


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue as the operator sees it: its jobs by state, whether it is paused, the
    live workers that consume it, and their finished attempts per second together."""

    queue: str
    counts: dict[str, int]
    pause: QueuePause | None
    consumers: list[str] = field(default_factory=list)
    throughput: QueueRate = IDLE

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(state.value, 0) for state in WAITING_STATES)


@dataclass(frozen=True, slots=True)
class Unconsumed:
    """A queue with jobs (or dead letters) waiting and no live worker consuming it."""

    queue: str
    waiting: int


def pause_queue(store: Store, queue: str, *, actor: str, reason: str) -> PauseResult:
    """Pause `queue`, audited with `reason` (required) in the same transaction."""
    now = time.time()
    name = required(queue, "queue")
    pause = QueuePause(name, operator_text(required(reason, "reason")), actor, now)
    with store.transaction() as execute:
        changed = fleet.pause(execute, pause)
        if changed:
            _audit(execute, audit.AuditAction.QUEUE_PAUSE, name, actor, reason, now=now)
        current = fleet.pauses(execute).get(name)
    return PauseResult(name, True, changed, current)


def resume_queue(store: Store, queue: str, *, actor: str, reason: str) -> PauseResult:
    """Resume `queue`, audited with `reason` (required) in the same transaction."""
    now = time.time()
    name = required(queue, "queue")
    why = required(reason, "reason")
    with store.transaction() as execute:
        was = fleet.pauses(execute).get(name)
        changed = fleet.resume(execute, name)
        if changed:
            details = {"paused_at": was.paused_at if was else None}
            _audit(execute, audit.AuditAction.QUEUE_RESUME, name, actor, why, now=now, **details)
    return PauseResult(name, False, changed, None)


def _audit(
    execute: Execute,
    action: audit.AuditAction,
    queue: str,
    actor: str,
    reason: str,
    *,
    now: float,
    **details: Any,
) -> None:
    audit.record(
        execute, at=now, actor=actor, action=action, target=queue, reason=reason, details=details
    )


def live_workers(store: Store, *, gone_after: float) -> list[WorkerPresence]:
    """Workers that wrote a heartbeat within the last `gone_after` seconds."""
    return store.live_workers(since=time.time() - gone_after)


def queues(store: Store, *, gone_after: float) -> list[QueueView]:
    """Every queue that holds jobs, is paused, or is consumed by a live worker."""
    counts: dict[str, dict[str, int]] = {}
    for (queue, state), count in store.count_states().items():
        counts.setdefault(queue, {})[state.value] = count
    pauses = store.paused_queues()
    consumers: dict[str, list[str]] = {}
    workers = live_workers(store, gone_after=gone_after)
    for worker in workers:
        for queue in worker.queues:
            consumers.setdefault(queue, []).append(worker.name)
    rates = throughput(workers)
    names = sorted({*counts, *pauses, *consumers})
    return [
        QueueView(
            name,
            counts.get(name, {}),
            pauses.get(name),
            consumers.get(name, []),
            rates.get(name, IDLE),
        )
        for name in names
    ]


def throughput(workers: list[WorkerPresence]) -> dict[str, QueueRate]:
    """Each queue's finished attempts per second, summed over `workers`."""
    total: dict[str, QueueRate] = {}
    for worker in workers:
        for queue, rate in worker.throughput.items():
            was = total.get(queue, IDLE)
            total[queue] = QueueRate(was.succeeded + rate.succeeded, was.failed + rate.failed)
    return total


def unconsumed(store: Store, *, gone_after: float) -> list[Unconsumed]:
    """Queues with jobs (or dead letters) waiting, not paused, that no live worker
    consumes. A paused queue is left out: nobody is meant to take its jobs."""
    consumed = {queue for w in live_workers(store, gone_after=gone_after) for queue in w.queues}
    paused = store.paused_queues()
    return [
        Unconsumed(queue, waiting)
        for queue, waiting in store.waiting_jobs().items()
        if queue not in consumed and queue not in paused and not is_parked_queue(queue)
    ]


# -- the JSON that the CLI's --json, the API and the dashboard share ---------------------


def pause_json(pause: QueuePause | None) -> JSONObject | None:
    if pause is None:
        return None
    return {"reason": pause.reason, "paused_by": pause.paused_by, "paused_at": pause.paused_at}


def result_json(result: PauseResult) -> JSONObject:
    return {
        "queue": result.queue,
        "paused": result.paused,
        "changed": result.changed,
        "pause": pause_json(result.pause),
    }


def queue_json(view: QueueView) -> JSONObject:
    return {
        "queue": view.queue,
        "counts": {**view.counts},
        "waiting": view.waiting,
        "paused": view.pause is not None,
        "pause": pause_json(view.pause),
        "consumers": [*view.consumers],
        "throughput": rate_json(view.throughput),
    }


def rate_json(rate: QueueRate) -> JSONObject:
    return {"succeeded": round(rate.succeeded, 3), "failed": round(rate.failed, 3)}


def worker_json(worker: WorkerPresence, *, now: float | None = None) -> JSONObject:
    at = now or time.time()
    return {
        "name": worker.name,
        "host": worker.host,
        "pid": worker.pid,
        "version": worker.version,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "started_at": worker.started_at,
        "heartbeat_at": worker.heartbeat_at,
        "running": [
            {
                "id": job.id,
                "task": job.task,
                "queue": job.queue,
                "started_at": job.started_at,
                "running_for": max(0.0, at - job.started_at),
            }
            for job in worker.running
        ],
        "throughput": {queue: rate_json(rate) for queue, rate in worker.throughput.items()},
    }
