"""What the dashboard's overview and groups show, read through the store's counters.

Every read here is bounded whatever the number of failures (see store/dashboard.py), so
that a page of the dashboard costs the same at a million failures as at ten.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from deadletter.config import ThresholdSettings
from deadletter.errors import InvalidRequest
from deadletter.model import ErrorClass
from deadletter.ops.failures import FailureItem, Group, groups
from deadletter.ops.thresholds import Check, evaluate
from deadletter.store import dashboard, reports
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.reports import DlqStats

Span = Literal["1h", "24h", "7d"]
# Per span: its length, the counters' bucket width it reads, and the chart's step.
SPANS: dict[str, tuple[int, int, int]] = {
    "1h": (3600, 60, 60),
    "24h": (86_400, 60, 900),
    "7d": (7 * 86_400, 3600, 3600),
}
SPARK_HOURS = 24
# The handler's delay is summarised over this many of the newest failures.
DELAY_SAMPLE = 1000
TOP_GROUPS = 8


@dataclass(frozen=True, slots=True)
class Series:
    """Failures by class over time: `times[i]` starts the step of each `counts[c][i]`."""

    span: str
    step: int
    times: list[float]
    counts: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class Depth:
    """Jobs of a queue waiting to run (queued, or retrying after a backoff) and running.
    The two waiting states are counted together: their split would read every waiting
    job's row, where their sum comes from the lease query's index alone."""

    queue: str
    waiting: int
    running: int

    @property
    def is_dlq(self) -> bool:
        return self.queue.endswith("-dlq")


@dataclass(frozen=True, slots=True)
class Delay:
    """The handler's delay over its `sample` newest failures, and the age of the oldest
    dead letter waiting for it (None when none waits)."""

    sample: int
    median: float | None
    worst: float | None
    oldest_waiting: float | None


@dataclass(frozen=True, slots=True)
class Overview:
    stats: DlqStats
    checks: list[Check]
    series: Series
    top_groups: list[Group]
    depths: list[Depth]
    backlog: int
    delay: Delay


def overview(store: Store, thresholds: ThresholdSettings, *, span: str, now: float) -> Overview:
    # One read transaction for all but the groups: on PostgreSQL each costs a round trip
    # or three, a fair part of the page's time.
    with store.snapshot() as execute:
        stats = reports.dlq_stats(execute, now=now)
        series = _series(execute, span, now)
        depths = _depths(execute)
        delay = _delay(execute, now)
    return Overview(
        stats=stats,
        checks=evaluate(stats, thresholds),
        series=series,
        top_groups=groups(store, limit=TOP_GROUPS),
        depths=depths,
        backlog=sum(d.waiting + d.running for d in depths if d.is_dlq),
        delay=delay,
    )


def failure_series(store: Store, *, span: str, now: float) -> Series:
    """Failures by class in each step of the last `span`, zeros included."""
    with store.snapshot() as execute:
        return _series(execute, span, now)


def _series(execute: Execute, span: str, now: float) -> Series:
    if span not in SPANS:
        raise InvalidRequest("span", f"must be one of {', '.join(SPANS)}, got {span!r}")
    length, width, step = SPANS[span]
    first = (int(now) - length) // step * step + step
    times = [float(t) for t in range(first, int(now) + 1, step)]
    found = dashboard.class_series(
        execute, width=width, step=step, since=first, until=times[-1] + step
    )
    index = {at: i for i, at in enumerate(times)}
    counts = {c.value: [0] * len(times) for c in ErrorClass}
    for count in found:
        counts[count.key][index[count.at]] += count.count
    return Series(span, step, times, counts)


def sparklines(store: Store, fingerprints: Sequence[str], *, now: float) -> dict[str, list[int]]:
    """Failures per hour of each group over the last SPARK_HOURS hours, oldest first."""
    first = (int(now) // 3600 - SPARK_HOURS + 1) * 3600
    with store.snapshot() as execute:
        found = dashboard.group_hours(
            execute, fingerprints, since=first, until=first + SPARK_HOURS * 3600
        )
    lines = {fingerprint: [0] * SPARK_HOURS for fingerprint in fingerprints}
    for count in found:
        lines[count.key][int(count.at - first) // 3600] += count.count
    return lines


def _depths(execute: Execute) -> list[Depth]:
    """Jobs waiting or running on each queue that has any."""
    waiting, running = dashboard.live_jobs(execute)
    return [
        Depth(queue, waiting.get(queue, 0), running.get(queue, 0))
        for queue in sorted({*waiting, *running})
    ]


def _delay(execute: Execute, now: float) -> Delay:
    delays = dashboard.recent_delays(execute, limit=DELAY_SAMPLE)
    oldest = dashboard.oldest_waiting(execute)
    return Delay(
        sample=len(delays),
        median=statistics.median(delays) if delays else None,
        worst=max(delays) if delays else None,
        oldest_waiting=None if oldest is None else max(0.0, now - oldest),
    )


# Where each class is routed (docs/dlq.md), in words.
ROUTES = {
    ErrorClass.RECOVERABLE.value: "recovery queue",
    ErrorClass.USER_ERROR.value: "user notification",
    ErrorClass.SYSTEM_ERROR.value: "ops alert",
    ErrorClass.UNKNOWN.value: "review log",
}


@dataclass(frozen=True, slots=True)
class Fate:
    """Where a failure was routed, and what became of it, in words."""

    route: str
    outcome: str


def route_fate(store: Store, failure: FailureItem) -> list[Fate]:
    """The route of `failure`'s class and what each of its rows says now; an alert
    raised for a new group is listed too, whatever the class."""
    with store.snapshot() as execute:
        rows = dashboard.route_rows(
            execute,
            dead_letter_id=failure.dead_letter_id,
            fingerprint=failure.fingerprint,
            handled_at=failure.handled_at,
        )
    route = ROUTES.get(failure.error_class, failure.error_class)
    fates = [Fate(route, _class_outcome(failure, rows))]
    if rows.alert is not None and failure.error_class != ErrorClass.SYSTEM_ERROR.value:
        fates.append(Fate("ops alert", _alert_outcome(failure, rows.alert)))
    return fates


def _class_outcome(failure: FailureItem, rows: dashboard.RouteRows) -> str:
    if failure.error_class == ErrorClass.RECOVERABLE.value:
        return failure.recovery_status or "no recovery row"
    if failure.error_class == ErrorClass.USER_ERROR.value:
        return _notification_outcome(rows.notification)
    if failure.error_class == ErrorClass.SYSTEM_ERROR.value:
        return _alert_outcome(failure, rows.alert) if rows.alert else "no alert found"
    if rows.review is None:
        return "no review entry"
    if rows.review.reviewed_at is None:
        return "waiting for review"
    note = f": {rows.review.note}" if rows.review.note else ""
    return f"reviewed by {rows.review.reviewed_by}{note}"


def _notification_outcome(row: dashboard.NotificationRow | None) -> str:
    if row is None:
        return "no notification"
    if row.status == "no_user":
        return "not sent: the job has no user label"
    if row.status == "pending" and row.last_error:
        # A notification is never given up on (docs/dlq.md): it is retried until sent.
        tries = f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}"
        return f"notification pending, retried: delivery failed ({tries}): {row.last_error}"
    return f"notification {row.status}"


def _alert_outcome(failure: FailureItem, alert: dashboard.AlertRow) -> str:
    own = alert.id.endswith(failure.dead_letter_id)
    how = "raised" if own else f"deduplicated into alert {alert.id}"
    outcome = f"{alert.kind} alert {how} ({alert.status}, {alert.occurrences} occurrences)"
    if alert.status == "pending" and alert.delivered:  # the other targets are still owed it
        outcome += f", delivered so far to {', '.join(alert.delivered)}"
    return outcome
