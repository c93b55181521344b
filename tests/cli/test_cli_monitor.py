"""check: the seed's key metrics against [thresholds], exit code 3 exactly when one fires."""

from __future__ import annotations

import json

from deadletter.app import App
from tests.cli.conftest import Cli
from tests.support.operator import fail


def test_check_exits_3_exactly_when_a_threshold_is_exceeded(cli: Cli, dlq_app: App) -> None:
    for key in ("tiles/1", "tiles/2"):
        fail(dlq_app, "charts.fetch", key)
    report = cli.json("check")
    values = {c["metric"]: (c["value"], c["state"]) for c in report["checks"]}
    assert values == {
        "last_24h": (2, "ok"),
        "avg_retries": (1, "ok"),
        "pending_recovery": (2, "ok"),
    }
    at_threshold = {"DEADLETTER_THRESHOLDS_PENDING_RECOVERY": "2"}
    assert cli.json("check", env=at_threshold)["fired"] == []

    above = {"DEADLETTER_THRESHOLDS_PENDING_RECOVERY": "1", "DEADLETTER_THRESHOLDS_LAST_24H": "1"}
    fired = cli.run("check", "--json", env=above)
    assert fired.returncode == 3
    assert json.loads(fired.stdout)["fired"] == ["last_24h", "pending_recovery"]
    shown = cli.run("check", env=above)
    assert shown.returncode == 3
    assert "alert" in shown.stdout and "review" in shown.stdout and "requeue or" in shown.stdout
