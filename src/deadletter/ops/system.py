"""What the faces ask of the system as a whole: its health, its figures for `/metrics`,
migrations, and the job list of `deadletter jobs`; so that `api/` and `cli/` hold no SQL
and open no store themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from deadletter.model import Job, JobState
from deadletter.store import metrics, open_store
from deadletter.store.base import Store
from deadletter.store.fleet import WorkerPresence
from deadletter.store.metrics import Delays, TaskMetrics
from deadletter.store.reports import DlqStats

DELAY_WINDOW = 3600.0
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything `/metrics` reports, read from the database at one moment."""

    jobs: dict[tuple[str, JobState], int]
    paused: list[str]
    workers: list[WorkerPresence]
    stats: DlqStats
    dead_letters: dict[str, int]
    delays: Delays
    tasks: dict[tuple[str, str], TaskMetrics]

    @property
    def consumers(self) -> dict[str, int]:
        """Live workers by queue they consume."""
        return dict(Counter(queue for worker in self.workers for queue in worker.queues))


def figures(store: Store, *, gone_after: float, now: float) -> Figures:
    """The figures of `/metrics`; workers silent for `gone_after` seconds are gone."""
    jobs = store.count_states()
    paused = sorted(store.paused_queues())
    workers = store.live_workers(since=now - gone_after)
    stats = store.dlq_stats(now=now)
    with store.snapshot() as execute:
        classes = metrics.dead_letters_by_class(execute)
        delays = metrics.handling_delays(execute, DELAY_BUCKETS, since=now - DELAY_WINDOW)
        tasks = metrics.task_metrics(execute)
    return Figures(jobs, paused, workers, stats, classes, delays, tasks)


def probe(store: Store) -> None:
    """Raises unless the database answers with its schema (see store/metrics.py)."""
    with store.snapshot() as execute:
        metrics.probe(execute)


@contextmanager
def opened(database_url: str) -> Iterator[Store]:
    """A store for one command of the command line, closed after it. A database server
    that cannot be reached is reported at once, with the driver's reason."""
    store = open_store(database_url, fail_fast=True)
    try:
        yield store
    finally:
        store.close()


def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; the names of those applied."""
    with opened(database_url) as store:
        return store.migrate()


def migrate_and_read(database_url: str, *, now: float) -> tuple[list[str], DlqStats]:
    """Apply pending migrations, then read the DLQ's statistics (deploy's check)."""
    with opened(database_url) as store:
        return store.migrate(), store.dlq_stats(now=now)


def jobs(
    database_url: str, *, queue: str | None, state: JobState | None, limit: int
) -> tuple[list[Job], dict[tuple[str, JobState], int]]:
    """Jobs newest first, and the count of every queue's jobs by state."""
    with opened(database_url) as store:
        return store.list_jobs(queue=queue, state=state, limit=limit), store.count_states()
