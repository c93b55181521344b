"""recover: the seed's interactive tool, driven through a pseudo-terminal as a person would."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from deadletter.app import App
from tests.cli.conftest import Cli
from tests.support.operator import Downstream, fail, recovery_status, run_worker, table

PROMPT = "choose an option (1-7, q to quit):"


def test_an_operator_lists_inspects_requeues_abandons_and_exports(
    cli: Cli, dlq_app: App, downstream: Downstream, tmp_path: Path
) -> None:
    timeout = fail(dlq_app, "charts.fetch", "tiles/1")
    invalid = fail(dlq_app, "reports.build", "invalid", "q3")
    downstream.healthy.add("tiles/1")
    screen = cli.terminal("recover")
    menu = screen.expect(PROMPT)
    for option in ("1. List failed jobs", "4. Get job details", "7. Export all failed jobs"):
        assert option in menu

    screen.type("2")
    assert "pending_recovery" in screen.expect(PROMPT)
    screen.type("1")
    listed = screen.expect(PROMPT)
    assert timeout in listed and invalid in listed
    screen.type("3")
    assert timeout in screen.expect(PROMPT)
    screen.type("4")
    screen.expect("job id:")
    screen.type(timeout)
    details = screen.expect(PROMPT)
    assert "RECOVERABLE" in details and "last traceback" in details

    screen.type("6")
    screen.expect("job id to abandon:")
    screen.type(invalid)
    screen.expect("reason (required):")
    screen.type("")
    assert "not abandoned" in screen.expect(PROMPT)
    screen.type("6")
    screen.expect("job id to abandon:")
    screen.type(invalid)
    screen.expect("reason (required):")
    screen.type("the report was withdrawn")
    assert f"job {invalid} is abandoned" in screen.expect(PROMPT)

    screen.type("5")
    screen.expect("job id to re-queue:")
    screen.type(timeout)
    screen.expect("reason (optional):")
    screen.type("partner is back")
    assert "is queued again" in screen.expect(PROMPT)
    screen.type("7")
    screen.expect("file (.jsonl, .csv or .json)")
    screen.type("failures.csv")
    screen.expect("reason (required):")
    screen.type("quarterly review")
    assert "exported every failure as csv" in screen.expect(PROMPT)
    screen.type("9")
    assert "no option '9'" in screen.expect(PROMPT)
    screen.type("q")
    assert screen.close() == 0

    run_worker(dlq_app)
    job = dlq_app.store.get_job(timeout)
    assert job is not None and job.status == "succeeded"
    assert recovery_status(dlq_app, timeout) == "recovered"
    assert table(
        dlq_app, "SELECT status, reason FROM dlq_recovery_queue WHERE job_id = ?", invalid
    ) == [("abandoned", "the report was withdrawn")]
    with (tmp_path / "failures.csv").open(newline="") as file:
        assert {row["job_id"] for row in csv.DictReader(file)} == {timeout, invalid}


def test_empty_answers_an_unknown_job_and_ctrl_d(cli: Cli, dlq_app: App) -> None:
    """Enter alone shows the menu again or goes back to it, an unknown job is an error
    shown in the menu, and Ctrl-D at a prompt ends the tool as `q` does."""
    screen = cli.terminal("recover")
    screen.expect(PROMPT)
    screen.type("")
    assert "1. List failed jobs" in screen.expect(PROMPT)
    for option in ("4", "5", "6"):
        screen.type(option)
        screen.expect("job id")
        screen.type("")
        screen.expect(PROMPT)
    screen.type("4")
    screen.expect("job id:")
    screen.type("job_nope")
    assert "job_nope" in screen.expect(PROMPT)
    screen.type("7")
    screen.expect("file (.jsonl, .csv or .json)")
    screen.type("")
    screen.expect("reason (required):")
    screen.type("")
    assert "not exported: a reason is required" in screen.expect(PROMPT)
    os.write(screen.master, b"\x04")  # Ctrl-D
    assert screen.close() == 0
    assert not list(cli.cwd.glob("dlq-failures-*"))
