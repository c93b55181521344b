"""What `/metrics` and `/healthz` read, in SQL both backends share (see failures.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deadletter.store.failures import Execute

DEAD_LETTERS_BY_CLASS = (
    "SELECT error_class, coalesce(sum(count), 0) FROM dlq_error_groups GROUP BY error_class"
)
# One pass over the window's failures (an index range on failed_at): each bucket's
# cumulative count, then the count and the sum of all.
DELAYS = """
SELECT {buckets},
    count(*), coalesce(sum(handled_at - failed_at), 0)
FROM dlq_failures WHERE failed_at >= ?
"""
DELAY_BUCKET = "coalesce(sum(CASE WHEN handled_at - failed_at <= ? THEN 1 ELSE 0 END), 0)"
# The counters and histograms per queue and task (migration 0019), summed over shards.
TASK_METRICS = """
SELECT queue, task, metric, bucket, sum(value) FROM task_metrics
GROUP BY queue, task, metric, bucket
"""
BOUNDS = "SELECT label FROM task_metric_bounds ORDER BY le"
# A table of the schema, not `SELECT 1`: a SQLite file replaced by an empty one answers
# `SELECT 1` but holds no jobs.
PROBE = "SELECT 1 FROM queue_jobs LIMIT 1"


@dataclass(frozen=True, slots=True)
class Delays:
    """How long the handler took to record failures (`handled_at - failed_at`):
    `cumulative[i]` of them within `bounds[i]` seconds, `count` in all, `total` seconds."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class Histogram:
    """Values observed, in seconds: `buckets` maps every upper bound's label ('0.5', ...,
    '+Inf'), in order, to how many fell in that bucket and no lower one (not cumulative)."""

    buckets: dict[str, int]
    total: float

    @property
    def count(self) -> int:
        return sum(self.buckets.values())


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    """What happened to the jobs of one (queue, task) since the database was created:
    counts by event (`enqueued`, `started`, `succeeded`, `retried`, `failed`,
    `dead_lettered`, `lease_lost`) and the histograms `run_seconds`, `wait_seconds`."""

    counts: dict[str, int]
    histograms: dict[str, Histogram]


def task_metrics(execute: Execute) -> dict[tuple[str, str], TaskMetrics]:
    """The metrics kept per (queue, task) in the transaction of each change."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    buckets: dict[tuple[str, str, str], dict[str, int]] = {}
    totals: dict[tuple[str, str, str], float] = {}
    for queue, task, metric, bucket, value in execute(TASK_METRICS, ()).fetchall():
        if bucket == "":
            counts.setdefault((queue, task), {})[metric] = int(value)
        elif bucket == "sum":
            totals[(queue, task, metric)] = float(value)
        else:
            buckets.setdefault((queue, task, metric), {})[bucket] = int(value)
    bounds = [label for (label,) in execute(BOUNDS, ()).fetchall()]
    histograms: dict[tuple[str, str], dict[str, Histogram]] = {}
    for (queue, task, name), by_bound in buckets.items():
        every = {bound: by_bound.get(bound, 0) for bound in bounds}
        total = totals.get((queue, task, name), 0.0)
        histograms.setdefault((queue, task), {})[name] = Histogram(every, total)
    keys = sorted({*counts, *histograms})
    return {key: TaskMetrics(counts.get(key, {}), histograms.get(key, {})) for key in keys}


def dead_letters_by_class(execute: Execute) -> dict[str, int]:
    """Failures handled since the database was created, by the class of their group."""
    rows = execute(DEAD_LETTERS_BY_CLASS, ()).fetchall()
    return {str(error_class): int(count) for error_class, count in rows}


def handling_delays(execute: Execute, bounds: Sequence[float], *, since: float) -> Delays:
    """The handling delays of the failures recorded since `since`, in buckets."""
    sql = DELAYS.format(buckets=", ".join([DELAY_BUCKET] * len(bounds)))
    *cumulative, count, total = execute(sql, (*bounds, since)).fetchone()
    return Delays(tuple(bounds), tuple(int(n) for n in cumulative), int(count), float(total))


def probe(execute: Execute) -> None:
    """Read the schema once: raises when the database or its tables cannot be reached."""
    execute(PROBE, ()).fetchall()
