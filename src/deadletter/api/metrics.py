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
  heartbeat within `[worker] gone_after_seconds`), all and by queue they consume;
- per queue and task, since the database was created (kept by the database in the
  transaction of each change, migration 0019, so pruning succeeded jobs loses nothing):
  `deadletter_jobs_enqueued_total`, `_started_total` (leased to run),
  `_released_total` (leases given back unstarted, migration 0028: started - released
  = attempts that ran), `_succeeded_total`, `_retried_total`, `_failed_total` (failed
  attempts, those retried and those dead-lettered), `_dead_lettered_total`,
  `deadletter_lease_losses_total` (leases reclaimed from a worker that stopped
  heartbeating), and the histograms
  `deadletter_job_run_seconds` (every attempt that ended, succeeded or failed) and
  `deadletter_job_wait_seconds` (from the time a job was due to its lease).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from deadletter.app import App
from deadletter.ops import system
from deadletter.ops.system import DELAY_WINDOW, Figures
from deadletter.store.metrics import Delays, Histogram

# (counter, the event the store counts, help) per queue and task.
TASK_COUNTERS = (
    ("deadletter_jobs_enqueued", "enqueued", "Jobs enqueued."),
    ("deadletter_jobs_started", "started", "Attempts started (jobs leased to run)."),
    ("deadletter_jobs_released", "released", "Leases given back unstarted (not run)."),
    ("deadletter_jobs_succeeded", "succeeded", "Jobs that succeeded."),
    ("deadletter_jobs_retried", "retried", "Failed attempts scheduled for a retry."),
    ("deadletter_jobs_failed", "failed", "Failed attempts, retried or dead-lettered."),
    ("deadletter_jobs_dead_lettered", "dead_lettered", "Jobs moved to their DLQ."),
    ("deadletter_lease_losses", "lease_lost", "Leases reclaimed from a silent worker."),
)
TASK_HISTOGRAMS = (
    ("deadletter_job_run_seconds", "run_seconds", "Seconds an attempt ran (every outcome)."),
    ("deadletter_job_wait_seconds", "wait_seconds", "Seconds from a job being due to its lease."),
)


class StoreCollector(Collector):
    """The figures of an app's store, read at each collection."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        # Nothing to describe ahead: registering must not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        gone_after = self.app.settings.worker.gone_after_seconds
        found = system.figures(self.app.store, gone_after=gone_after, now=time.time())
        yield _jobs(found)
        yield from _fleet(found)
        yield from _dlq(found)
        yield _dead_letters(found.dead_letters)
        yield _delays(found.delays)
        yield from _tasks(found)


def _jobs(found: Figures) -> Metric:
    family = GaugeMetricFamily(
        "deadletter_jobs", "Jobs by queue and state, now.", labels=["queue", "state"]
    )
    for (queue, state), count in sorted(found.jobs.items()):
        family.add_metric([queue, state.value], count)
    return family


def _fleet(found: Figures) -> Iterator[Metric]:
    paused = GaugeMetricFamily(
        "deadletter_queue_paused", "1 for each queue an operator paused.", labels=["queue"]
    )
    for queue in found.paused:
        paused.add_metric([queue], 1)
    yield paused
    yield GaugeMetricFamily(
        "deadletter_workers_live", "Workers with a recent heartbeat.", len(found.workers)
    )
    consumers = GaugeMetricFamily(
        "deadletter_queue_consumers", "Live workers consuming each queue.", labels=["queue"]
    )
    for queue, count in sorted(found.consumers.items()):
        consumers.add_metric([queue], count)
    yield consumers


def _dlq(found: Figures) -> Iterator[Metric]:
    stats = found.stats
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


def _dead_letters(by_class: dict[str, int]) -> Metric:
    family = CounterMetricFamily(
        "deadletter_dead_letters",
        "Failures handled since the database was created, by the class of their group.",
        labels=["error_class"],
    )
    for error_class, count in sorted(by_class.items()):
        family.add_metric([error_class], count)
    return family


def _delays(delays: Delays) -> Metric:
    pairs = zip(delays.bounds, delays.cumulative, strict=True)
    buckets = [(str(le), n) for le, n in pairs]
    return GaugeHistogramMetricFamily(
        "deadletter_dlq_handling_delay_seconds",
        "Seconds from a job's last failed attempt to its failure being handled"
        f" (handled_at - failed_at), over the failures of the last {DELAY_WINDOW:g} s.",
        buckets=[*buckets, ("+Inf", delays.count)],
        gsum_value=delays.total,
    )


def _tasks(found: Figures) -> Iterator[Metric]:
    labels = ["queue", "task"]
    for name, event, text in TASK_COUNTERS:
        counter = CounterMetricFamily(name, text, labels=labels)
        for key, kept in found.tasks.items():
            counter.add_metric(list(key), kept.counts.get(event, 0))
        yield counter
    for name, kind, text in TASK_HISTOGRAMS:
        histogram = HistogramMetricFamily(name, text, labels=labels)
        for key, kept in found.tasks.items():
            if kind in kept.histograms:
                buckets, total = _cumulative(kept.histograms[kind])
                histogram.add_metric(list(key), buckets, total)
        yield histogram


def _cumulative(histogram: Histogram) -> tuple[list[tuple[str, float]], float]:
    """Prometheus' cumulative buckets, in the order of their bounds (the last is +Inf)."""
    running = 0
    buckets = []
    for bound, count in histogram.buckets.items():
        running += count
        buckets.append((bound, float(running)))
    return buckets, histogram.total


def registry_for(app: App) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    return registry
