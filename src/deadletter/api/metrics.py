"""`/metrics`: the database's figures in Prometheus' text format, read at each scrape.

Every figure is read from the database when Prometheus asks, not counted in this
process: any API server of a deployment answers with the same numbers, and a restart
loses nothing. Scrape one server, not all of them, or the sums double.

- `deadletter_jobs{queue,state}`: jobs by queue and state, now (dead letters waiting for
  the handler are the jobs of the `<queue>-dlq` queues);
- `deadletter_dead_letters_total{error_class}`: failures handled since the database was
  created, by the class of their group (kept when old failures are archived);
- `deadletter_recovery_backlog{status}`: rows of the recovery queue by status;
- `deadletter_dlq_failed_jobs`, `deadletter_dlq_failed_last_24h`,
  `deadletter_dlq_avg_retries`: the seed's key metrics, as `/api/queue/dlq/stats`;
- `deadletter_dlq_handling_delay_seconds`: a gauge histogram of how long the handler
  took to record a failure (`handled_at - failed_at`: from the job's last failed
  attempt to its failure being stored, classified and routed), over the failures of
  the last hour. A backlog of dead letters shows here first;
- `deadletter_queue_paused{queue}`: 1 for each queue an operator paused (absent when
  none is);
- `deadletter_workers_live` and `deadletter_queue_consumers{queue}`: live workers (a
  heartbeat within `[worker] gone_after_seconds`), all and by queue they consume.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from deadletter.app import App
from deadletter.store.base import Store

DELAY_WINDOW = 3600.0
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

DEAD_LETTERS_BY_CLASS = (
    "SELECT error_class, coalesce(sum(count), 0) FROM dlq_error_groups GROUP BY error_class"
)
# One pass over the window's failures (an index range on failed_at): each bucket's
# cumulative count, then the count and the sum of all.
DELAYS = f"""
SELECT {
    ", ".join(
        ["coalesce(sum(CASE WHEN handled_at - failed_at <= ? THEN 1 ELSE 0 END), 0)"]
        * len(DELAY_BUCKETS)
    )
},
    count(*), coalesce(sum(handled_at - failed_at), 0)
FROM dlq_failures WHERE failed_at >= ?
"""


class StoreCollector(Collector):
    """The figures of an app's store, read at each collection."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def store(self) -> Store:
        return self.app.store

    def describe(self) -> list[Metric]:
        # Nothing to describe ahead: registering must not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        yield self._jobs()
        yield from self._fleet(now)
        yield from self._dlq(now)
        with self.store.snapshot() as execute:
            classes = [tuple(row) for row in execute(DEAD_LETTERS_BY_CLASS, ()).fetchall()]
            delays = execute(DELAYS, (*DELAY_BUCKETS, now - DELAY_WINDOW)).fetchone()
        yield _dead_letters(classes)
        yield _delays(tuple(delays))

    def _jobs(self) -> Metric:
        family = GaugeMetricFamily(
            "deadletter_jobs", "Jobs by queue and state, now.", labels=["queue", "state"]
        )
        for (queue, state), count in sorted(self.store.count_states().items()):
            family.add_metric([queue, state.value], count)
        return family

    def _fleet(self, now: float) -> Iterator[Metric]:
        paused = GaugeMetricFamily(
            "deadletter_queue_paused", "1 for each queue an operator paused.", labels=["queue"]
        )
        for queue in sorted(self.store.paused_queues()):
            paused.add_metric([queue], 1)
        yield paused
        gone_after = self.app.settings.worker.gone_after_seconds
        workers = self.store.live_workers(since=now - gone_after)
        yield GaugeMetricFamily(
            "deadletter_workers_live", "Workers with a recent heartbeat.", len(workers)
        )
        consumers = GaugeMetricFamily(
            "deadletter_queue_consumers", "Live workers consuming each queue.", labels=["queue"]
        )
        for queue, count in sorted(Counter(q for w in workers for q in w.queues).items()):
            consumers.add_metric([queue], count)
        yield consumers

    def _dlq(self, now: float) -> Iterator[Metric]:
        stats = self.store.dlq_stats(now=now)
        backlog = GaugeMetricFamily(
            "deadletter_recovery_backlog",
            "Rows of the recovery queue by status.",
            labels=["status"],
        )
        for status, count in stats.recovery.items():
            backlog.add_metric([status], count)
        yield backlog
        yield GaugeMetricFamily(
            "deadletter_dlq_failed_jobs", "Jobs failed now (total_failed).", stats.total_failed
        )
        yield GaugeMetricFamily(
            "deadletter_dlq_failed_last_24h",
            "Jobs that failed in the last 24 hours (last_24h).",
            stats.last_24h,
        )
        yield GaugeMetricFamily(
            "deadletter_dlq_avg_retries",
            "Retries per failed job, on average (avg_retries).",
            stats.avg_retries,
        )


def _dead_letters(rows: list[tuple[Any, ...]]) -> Metric:
    family = CounterMetricFamily(
        "deadletter_dead_letters",
        "Failures handled since the database was created, by the class of their group.",
        labels=["error_class"],
    )
    for error_class, count in sorted(rows):
        family.add_metric([error_class], int(count))
    return family


def _delays(row: tuple[float, ...]) -> Metric:
    *cumulative, count, total = row
    buckets = [(str(le), int(n)) for le, n in zip(DELAY_BUCKETS, cumulative, strict=True)]
    return GaugeHistogramMetricFamily(
        "deadletter_dlq_handling_delay_seconds",
        "Seconds from a job's last failed attempt to its failure being handled"
        f" (handled_at - failed_at), over the failures of the last {DELAY_WINDOW:g} s.",
        buckets=[*buckets, ("+Inf", int(count))],
        gsum_value=float(total),
    )


def registry_for(app: App) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    return registry
