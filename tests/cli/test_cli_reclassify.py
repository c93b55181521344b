"""`deadletter reclassify` as an operator runs it after changing the rules, on every backend."""

from __future__ import annotations

from pathlib import Path

from deadletter.app import App
from tests.cli.conftest import Cli
from tests.support.operator import fail, recovery_status

TIMEOUT_RULE = """
[[rules]]
name = "timeouts-are-ours"
class = "SYSTEM_ERROR"
exception_types = ["TimeoutError"]
"""


def test_reclassify_after_a_dry_run_moves_by_the_rules_of_the_config(
    cli: Cli, dlq_app: App, tmp_path: Path
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    fail(dlq_app, "reports.build", "mystery", "q3")
    assert cli.json("reclassify", "--reason", "no change", "--json")["moves"] == []
    config = tmp_path / "deadletter.toml"
    config.write_text(config.read_text() + TIMEOUT_RULE)

    dry = cli.json("reclassify", "--dry-run", "--reason", "timeouts are ours", "--json")
    assert dry["dry_run"] and dry["examined"] == 2
    assert dry["counts"] == {"RECOVERABLE->SYSTEM_ERROR": 1}
    assert recovery_status(dlq_app, job_id) == "pending"

    out = cli.ok("reclassify", "--reason", "timeouts are ours")
    assert f"moved {job_id}" in out and "RECOVERABLE->SYSTEM_ERROR: 1" in out
    assert "moved 1 of 2 current failure(s)" in out
    assert recovery_status(dlq_app, job_id) is None
    assert cli.run("reclassify").returncode == 2  # a reason is required
