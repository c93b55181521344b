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
SELECT queue, task, metric, bucket, sum(count), sum(seconds) FROM task_metrics
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
    counts by event (`enqueued`, `started`, `released`, `succeeded`, `retried`, `failed`,
    `dead_lettered`, `lease_lost`) and the histograms `run_seconds`, `wait_seconds`."""

    counts: dict[str, int]
    histograms: dict[str, Histogram]


# The histograms of /metrics, from the events whose durations they hold.
HISTOGRAMS = {"wait_seconds": ("started",), "run_seconds": ("succeeded", "failed")}


def task_metrics(execute: Execute) -> dict[tuple[str, str], TaskMetrics]:
    """The metrics kept per (queue, task) in the transaction of each change."""
    bounds = [label for (label,) in execute(BOUNDS, ()).fetchall()]
    counts: dict[tuple[str, str], dict[str, int]] = {}
    # (queue, task, event) -> {bound: count}, and the seconds of all
    buckets: dict[tuple[str, str, str], dict[str, int]] = {}
    totals: dict[tuple[str, str, str], float] = {}
    for queue, task, event, bucket, count, seconds in execute(TASK_METRICS, ()).fetchall():
        by_event = counts.setdefault((queue, task), {})
        by_event[event] = by_event.get(event, 0) + int(count)
        if bucket:
            buckets.setdefault((queue, task, event), {})[bucket] = int(count)
            totals[(queue, task, event)] = totals.get((queue, task, event), 0.0) + seconds
    return {
        key: TaskMetrics(counts[key], _histograms(key, bounds, buckets, totals))
        for key in sorted(counts)
    }


def _histograms(
    key: tuple[str, str],
    bounds: list[str],
    buckets: dict[tuple[str, str, str], dict[str, int]],
    totals: dict[tuple[str, str, str], float],
) -> dict[str, Histogram]:
    """The histograms of one (queue, task), each summing the buckets of its events."""
    found = {}
    for name, events in HISTOGRAMS.items():
        held = [(*key, event) for event in events if (*key, event) in buckets]
        if held:
            every = {b: sum(buckets[e].get(b, 0) for e in held) for b in bounds}
            found[name] = Histogram(every, sum(totals[e] for e in held))
    return found


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
