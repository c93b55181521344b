"""What the faces ask of the system as a whole: its health, its figures for `/metrics`,
migrations, and the job list of `deadletter jobs`; so that `api/` and `cli/` hold no SQL
and open no store themselves.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from deadletter.model import Job, JobState
from deadletter.store import metrics, open_store
from deadletter.store.base import Store
from deadletter.store.fleet import WorkerPresence
from deadletter.store.metrics import Delays, TaskMetrics
from deadletter.store.outage import OutageLog
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


# While the database is away, the server probes it this often, doubling up to the cap.
FIRST_PROBE = 0.1
MAX_PROBE = 1.0


class HealthWatch:
    """A server's view of its database, and its log of the database's outages: one line
    when a probe or a request finds it away, one with the outage's length when it
    answers again, however many probes fail in between. While it is away a thread of
    the watch's own probes it with a capped backoff, so that the end is logged when the
    database is back, not at the next probe from outside."""

    def __init__(self, log: logging.Logger) -> None:
        self._outage = OutageLog(
            log,
            began="database unreachable, /healthz answers degraded until it is back: %s",
            ended="database reachable again after an outage of %.1f s",
        )
        self._closed = threading.Event()

    def failed(self, store: Store, exc: BaseException) -> None:
        """`store` did not answer: an outage begins unless one is on."""
        if self._outage.failed(exc):
            threading.Thread(
                target=self._wait_out, args=(store,), name="database-outage", daemon=True
            ).start()

    def answered(self) -> None:
        self._outage.succeeded()

    def close(self) -> None:
        """Stop probing (the server stops)."""
        self._closed.set()

    def _wait_out(self, store: Store) -> None:
        delay = FIRST_PROBE
        while self._outage.since is not None and not self._closed.wait(delay):
            try:
                probe(store)
            except Exception:  # still away: the outage's first line said why
                delay = min(delay * 2, MAX_PROBE)
                continue
            self.answered()


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
