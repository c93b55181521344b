"""The seed's key metrics against thresholds, over every backend, from real failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.config import ThresholdSettings, load_settings
from deadletter.errors import ConfigError
from deadletter.ops.thresholds import ThresholdWatch, evaluate, raise_alerts
from tests.contract.test_dlq_handler import enqueue, make_app, rows

WINDOW = 3600.0
# Early in a window, so that `+ 3000` stays inside it.
START = WINDOW * 472_222 + 10
NEVER = ThresholdSettings(last_24h=1e9, avg_retries=1e9, pending_recovery=1e9)


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    """Four failed jobs, each retried three times; one of them waits for recovery."""
    application = make_app(store_url, tmp_path)
    for node in range(3):
        enqueue(application, "server_error", str(node))
    enqueue(application, "timeout", "building-a")
    application.worker().run(burst=True)
    yield application
    application.close()


def threshold_alerts(app: App) -> list[tuple[str, str]]:
    return sorted(rows(app, "SELECT id, title FROM ops_alerts WHERE kind = 'threshold'"))


def test_a_metric_fires_above_its_threshold_not_at_it(app: App) -> None:
    stats = app.store.dlq_stats(now=time.time())
    at = ThresholdSettings(last_24h=4, avg_retries=3.0, pending_recovery=1)
    assert [(c.metric, c.value, c.state) for c in evaluate(stats, at)] == [
        ("last_24h", 4, "ok"),
        ("avg_retries", 3.0, "ok"),
        ("pending_recovery", 1, "ok"),
    ]
    below = ThresholdSettings(last_24h=3, avg_retries=2.99, pending_recovery=0)
    assert [c.state for c in evaluate(stats, below)] == ["alert", "alert", "review"]
    # the seed's defaults: > 10, > 2.5, > 5
    assert [c.fired for c in evaluate(stats, ThresholdSettings())] == [False, True, False]


def test_fired_thresholds_alert_once_per_window(app: App) -> None:
    stats = app.store.dlq_stats(now=START)
    fired = evaluate(stats, ThresholdSettings(last_24h=0, avg_retries=0, pending_recovery=0))
    first = raise_alerts(app.store, fired, now=START, window=WINDOW)
    assert len(first) == 3
    assert raise_alerts(app.store, fired, now=START + 3000, window=WINDOW) == first
    assert [alert_id for alert_id, _ in threshold_alerts(app)] == sorted(first)
    later = raise_alerts(app.store, fired, now=START + WINDOW, window=WINDOW)
    assert set(later).isdisjoint(first)
    assert len(threshold_alerts(app)) == 6
    assert raise_alerts(app.store, evaluate(stats, NEVER), now=START, window=WINDOW) == []
    titles = [title for _, title in threshold_alerts(app)]
    assert "Alert: last_24h is 4 (above 0)" in titles
    assert "Review: pending_recovery is 1 (above 0)" in titles


def test_the_worker_duty_alerts_once_while_a_threshold_stays_fired(app: App) -> None:
    settings = ThresholdSettings(
        last_24h=3, avg_retries=5, pending_recovery=5, alert_window_seconds=1e9, interval_seconds=7
    )
    watch = ThresholdWatch(app.store, settings)
    assert watch.interval == 7
    checks = watch()
    assert [c.metric for c in checks if c.fired] == ["last_24h"]
    watch()
    [(alert_id, _)] = threshold_alerts(app)
    assert alert_id.startswith("threshold-last_24h-")


def test_thresholds_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "deadletter.toml").write_text("[thresholds]\nlast_24h = 50\navg_retries = 4\n")
    environ = {"DEADLETTER_THRESHOLDS_AVG_RETRIES": "3.5"}
    settings = load_settings(environ=environ, cwd=tmp_path).thresholds
    assert (settings.last_24h, settings.avg_retries, settings.pending_recovery) == (50, 3.5, 5)
    (tmp_path / "deadletter.toml").write_text("[thresholds]\nlast24h = 50\n")
    with pytest.raises(ConfigError, match="last24h"):
        load_settings(environ={}, cwd=tmp_path)
