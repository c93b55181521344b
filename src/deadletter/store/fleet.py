"""Running a fleet: paused queues and live workers, in SQL both backends share.

Written once with `?` placeholders, like failures.py. The functions take the caller's
`Execute`, so that a pause and its audit record share one transaction (ops/fleet.py);
`FleetMixin` gives both stores the same methods over their own transactions.

The lease statements of each backend skip the queues paused here (sqlite.py READY,
postgres.py LEASE); PostgreSQL wakes listening workers when a queue is resumed (a
trigger of migration 0009), SQLite's workers see it at their next poll.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from deadletter.store.failures import Execute


@dataclass(frozen=True, slots=True)
class QueuePause:
    queue: str
    reason: str
    paused_by: str
    paused_at: float


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job a worker's slot is running now (not one leased ahead and waiting)."""

    id: str
    task: str
    queue: str
    started_at: float


@dataclass(frozen=True, slots=True)
class QueueRate:
    """Attempts of a queue's jobs a worker finished per second, over its last heartbeat
    interval: those that succeeded and those that failed (retried or dead-lettered)."""

    succeeded: float
    failed: float


@dataclass(frozen=True, slots=True)
class WorkerPresence:
    """What a worker says of itself on each heartbeat."""

    name: str
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    concurrency: int
    started_at: float
    heartbeat_at: float
    running: tuple[RunningJob, ...] = ()
    throughput: dict[str, QueueRate] = field(default_factory=dict)


PAUSE = """
INSERT INTO queue_pauses (queue, reason, paused_by, paused_at) VALUES (?, ?, ?, ?)
ON CONFLICT (queue) DO NOTHING
"""
RESUME = "DELETE FROM queue_pauses WHERE queue = ?"
PAUSES = "SELECT queue, reason, paused_by, paused_at FROM queue_pauses ORDER BY queue"

WORKER_COLUMNS = (
    "name, host, pid, version, queues, concurrency, started_at, heartbeat_at, running, throughput"
)
# A heartbeat rewrites what changes; the rest was written by the first one.
BEAT = f"""
INSERT INTO workers ({WORKER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    running = excluded.running, throughput = excluded.throughput
"""
DROP_WORKER = "DELETE FROM workers WHERE name = ?"
# Workers whose heartbeat is older than `forget` seconds are gone for good: deleted by
# each worker that starts, so that the table holds no more than recent history.
FORGET_WORKERS = "DELETE FROM workers WHERE heartbeat_at < ?"
LIVE_WORKERS = f"""
SELECT {WORKER_COLUMNS} FROM workers WHERE heartbeat_at >= ? ORDER BY host, started_at, name
"""
# Jobs waiting for a worker of this system, by queue: an adopted job of Celery, RQ or
# Dramatiq (job_origins) waits queued on its host, which runs it, not on a worker here.
WAITING = """
SELECT queue, count(*) FROM queue_jobs
WHERE status IN ('queued', 'retrying') AND id NOT IN (SELECT job_id FROM job_origins)
GROUP BY queue ORDER BY queue
"""


def pause(execute: Execute, pause: QueuePause) -> bool:
    """Pause a queue; False when it was paused already (the first pause's reason stays)."""
    params = (pause.queue, pause.reason, pause.paused_by, pause.paused_at)
    return execute(PAUSE, params).rowcount > 0


def resume(execute: Execute, queue: str) -> bool:
    """Resume a queue; False when it was not paused."""
    return execute(RESUME, (queue,)).rowcount > 0


def pauses(execute: Execute) -> dict[str, QueuePause]:
    """Every paused queue, by name."""
    return {row[0]: QueuePause(*row) for row in execute(PAUSES, ()).fetchall()}


def beat(execute: Execute, worker: WorkerPresence) -> None:
    running = json.dumps(
        [
            {"id": j.id, "task": j.task, "queue": j.queue, "started_at": j.started_at}
            for j in worker.running
        ]
    )
    params = (
        worker.name,
        worker.host,
        worker.pid,
        worker.version,
        json.dumps(list(worker.queues)),
        worker.concurrency,
        worker.started_at,
        worker.heartbeat_at,
        running,
        json.dumps({q: [r.succeeded, r.failed] for q, r in worker.throughput.items()}),
    )
    execute(BEAT, params)


def live_workers(execute: Execute, *, since: float) -> list[WorkerPresence]:
    """Workers whose last heartbeat is at `since` or later."""
    return [_presence(row) for row in execute(LIVE_WORKERS, (since,)).fetchall()]


def _presence(row: Sequence[Any]) -> WorkerPresence:
    name, host, pid, version, queues, concurrency, started_at, heartbeat_at, running, rates = row
    return WorkerPresence(
        name=name,
        host=host,
        pid=int(pid),
        version=version,
        queues=tuple(json.loads(queues)),
        concurrency=int(concurrency),
        started_at=float(started_at),
        heartbeat_at=float(heartbeat_at),
        running=tuple(RunningJob(**job) for job in json.loads(running)),
        throughput={q: QueueRate(*pair) for q, pair in json.loads(rates).items()},
    )


class FleetMixin:
    """The fleet's store methods, the same on both backends (see base.Store), over the
    backend's own `transaction` and `snapshot`."""

    def transaction(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def pause_queue(self, pause_: QueuePause) -> bool:
        with self.transaction() as execute:
            return pause(execute, pause_)

    def resume_queue(self, queue: str) -> bool:
        with self.transaction() as execute:
            return resume(execute, queue)

    def paused_queues(self) -> dict[str, QueuePause]:
        with self.snapshot() as execute:
            return pauses(execute)

    def beat_worker(self, worker: WorkerPresence, *, forget_before: float) -> None:
        """Write a worker's heartbeat; with `forget_before`, drop workers silent since."""
        with self.transaction() as execute:
            execute(FORGET_WORKERS, (forget_before,))
            beat(execute, worker)

    def drop_worker(self, name: str) -> None:
        with self.transaction() as execute:
            execute(DROP_WORKER, (name,))

    def live_workers(self, *, since: float) -> list[WorkerPresence]:
        with self.snapshot() as execute:
            return live_workers(execute, since=since)

    def waiting_jobs(self) -> dict[str, int]:
        with self.snapshot() as execute:
            return {row[0]: int(row[1]) for row in execute(WAITING, ()).fetchall()}
