"""The seed's key metrics against thresholds: `deadletter check`, and a worker duty.

Each metric is read from the DLQ statistics (`store.dlq_stats`, defined in
docs/dlq.md) and fires when it is strictly above its threshold, as the seed says
("alert if > 10"). A fired threshold raises one ops alert per window: its id names
the metric and the window it falls in, so that every worker checking at once, and
every check within the window, inserts the same row once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from deadletter.config import ThresholdSettings
from deadletter.store.base import Store
from deadletter.store.reports import DlqStats


class Level(StrEnum):
    """What a fired threshold asks for, as in the seed's list of key metrics."""

    ALERT = "alert"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class Check:
    metric: str
    value: float
    threshold: float
    level: Level
    fired: bool

    @property
    def state(self) -> str:
        """`ok`, or the level of the fired threshold: what `deadletter check` prints."""
        return self.level.value if self.fired else "ok"


# What each metric counts and where to look, for the alert's reader.
MEANINGS = {
    "last_24h": "jobs that failed in the last 24 hours; see `deadletter failures` and"
    " `deadletter groups` for their causes",
    "avg_retries": "retries per failed job, on average; jobs spend their retries before"
    " failing, so look for a dependency that is down",
    "pending_recovery": "recoverable failures waiting in the recovery queue; requeue or"
    " abandon them with `deadletter recover`",
}


def evaluate(stats: DlqStats, thresholds: ThresholdSettings) -> list[Check]:
    """Each key metric against its threshold; fired when above it, not at it."""
    return [
        _check("last_24h", stats.last_24h, thresholds.last_24h, Level.ALERT),
        _check("avg_retries", stats.avg_retries, thresholds.avg_retries, Level.ALERT),
        _check(
            "pending_recovery",
            stats.recovery["pending"],
            thresholds.pending_recovery,
            Level.REVIEW,
        ),
    ]


def raise_alerts(store: Store, checks: list[Check], *, now: float, window: float) -> list[str]:
    """An ops alert for each fired check, once per metric per `window` seconds (windows
    are fixed intervals of epoch time); the ids of the fired checks' alerts."""
    alert_ids = []
    for check in checks:
        if not check.fired:
            continue
        alert_id = f"threshold-{check.metric}-{int(now // window)}"
        store.add_alert(
            alert_id=alert_id, kind="threshold", title=_title(check), body=_body(check), now=now
        )
        alert_ids.append(alert_id)
    return alert_ids


class ThresholdWatch:
    """The worker's periodic duty: check the thresholds, alert on those that fire.
    Schedule it every `interval` seconds."""

    def __init__(self, store: Store, thresholds: ThresholdSettings) -> None:
        self.store = store
        self.thresholds = thresholds

    @property
    def interval(self) -> float:
        return self.thresholds.interval_seconds

    def __call__(self) -> list[Check]:
        now = time.time()
        checks = evaluate(self.store.dlq_stats(now=now), self.thresholds)
        raise_alerts(self.store, checks, now=now, window=self.thresholds.alert_window_seconds)
        return checks


def _check(metric: str, value: float, threshold: float, level: Level) -> Check:
    return Check(metric, value, threshold, level, fired=value > threshold)


def _title(check: Check) -> str:
    what = f"{check.metric} is {check.value:g} (above {check.threshold:g})"
    return f"{check.level.value.capitalize()}: {what}"


def _body(check: Check) -> str:
    return (
        f"{check.metric} = {check.value:g}, threshold {check.threshold:g}"
        f" ([thresholds] {check.metric} in deadletter.toml).\n{check.metric}:"
        f" {MEANINGS[check.metric]}."
    )
