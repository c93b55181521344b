"""requeue and abandon, of one job and by filter, and what they leave in the database."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from deadletter.app import App
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from tests.cli.conftest import USER, Cli
from tests.support.operator import OTHER_Q, Downstream, Q, fail, recovery_status, run_worker, table


def fail_many(app: App, count: int) -> list[str]:
    fetch = app.tasks["charts.fetch"]
    job_ids = app.enqueue_many(fetch.spec(f"tiles/{i}") for i in range(count))
    run_worker(app)
    return job_ids


def statuses(app: App) -> dict[str, str]:
    return dict(table(app, "SELECT id, status FROM queue_jobs WHERE queue IN (?, ?)", Q, OTHER_Q))


def test_a_requeued_job_runs_again_and_recovers(
    cli: Cli, dlq_app: App, downstream: Downstream, tmp_path: Path
) -> None:
    plain = fail(dlq_app, "charts.fetch", "tiles/1")
    edited = fail(dlq_app, "charts.fetch", "tiles/2")
    downstream.healthy |= {"tiles/1", "tiles/2-fixed"}
    done = cli.json("requeue", plain, "--reason", "partner is back")
    assert done["outcome"] == "requeued"
    (tmp_path / "payload.json").write_text(json.dumps({"args": ["tiles/2-fixed"]}))
    assert "queued again" in cli.ok("requeue", edited, "--payload", "@payload.json")
    twice = cli.run("requeue", plain)
    assert twice.returncode == 1 and "already requeued" in twice.stdout

    run_worker(dlq_app)
    assert statuses(dlq_app) == {plain: "succeeded", edited: "succeeded"}
    assert recovery_status(dlq_app, plain) == recovery_status(dlq_app, edited) == "recovered"
    assert downstream.runs == {"tiles/1": 3, "tiles/2": 2, "tiles/2-fixed": 1}
    [entry] = audit_entries(dlq_app.store, target=plain).items
    assert (entry.actor, entry.action, entry.reason) == (
        f"cli:{USER}",
        AuditAction.REQUEUE,
        "partner is back",
    )
    bad = cli.run("requeue", edited, "--payload", '{"args": "not a list"}')
    assert bad.returncode == 2 and "payload" in bad.stderr


def test_abandon_needs_a_reason(cli: Cli, dlq_app: App) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    missing = cli.run("abandon", job_id)
    assert missing.returncode == 2 and "Missing option '--reason'" in missing.stderr
    blank = cli.run("abandon", job_id, "--reason", "  ")
    assert blank.returncode == 2 and "reason" in blank.stderr
    assert recovery_status(dlq_app, job_id) == "pending"
    assert cli.json("abandon", job_id, "--reason", "tile retired")["outcome"] == "abandoned"
    assert recovery_status(dlq_app, job_id) == "abandoned"
    assert statuses(dlq_app) == {job_id: "failed"}


def test_a_bulk_requeue_shows_its_plan_refuses_everything_and_asks(cli: Cli, dlq_app: App) -> None:
    job_ids = fail_many(dlq_app, 6)
    other = fail(dlq_app, "reports.build", "invalid", "q1")
    refused = cli.run("requeue", "--reason", "back")
    assert refused.returncode == 2 and "--all" in refused.stderr

    plan = cli.json("requeue", "--queue", Q, "--dry-run")["plan"]
    assert plan["count"] == 6 and {f["job_id"] for f in plan["sample"]} == set(job_ids)
    unasked = cli.run("requeue", "--queue", Q, "--reason", "back", "--since", "1h")
    # A script without --yes changes nothing and says so with its exit code.
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr
    assert "6 failed jobs match queue=charts" in unasked.stdout
    # Times in the plan as people read them, not epoch seconds.
    assert re.search(r" since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", unasked.stdout)
    assert set(statuses(dlq_app).values()) == {"failed"}

    ran = cli.json("requeue", "--queue", Q, "--reason", "back", "--yes", "--rate", "1000")
    assert (ran["result"]["stopped"], ran["result"]["moved"]) == ("done", 6)
    assert statuses(dlq_app) == {**dict.fromkeys(job_ids, "queued"), other: "failed"}


def test_ctrl_c_cancels_a_bulk_run_between_batches(cli: Cli, dlq_app: App) -> None:
    job_ids = fail_many(dlq_app, 10)
    running = cli.popen("abandon", "--queue", Q, "--reason", "retired", "--yes", "--rate", "2")
    deadline = time.monotonic() + 20
    while not _abandoned(dlq_app) and time.monotonic() < deadline:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=20)
    assert running.returncode == 130, err
    assert "cancelled" in out and "run the same command again" in out
    moved = _abandoned(dlq_app)
    assert 1 <= moved < len(job_ids)
    assert f"cancelled: {moved} abandoned" in out
    [stop] = audit_entries(dlq_app.store, action=AuditAction.BULK_STOPPED).items
    assert stop.details["stopped"] == "cancelled" and stop.details["moved"] == moved
    job = dlq_app.store.get_job(job_ids[0])
    assert job is not None and job.status is JobState.FAILED


def _abandoned(app: App) -> int:
    [(count,)] = table(app, "SELECT count(*) FROM dlq_recovery_queue WHERE status = 'abandoned'")
    return int(count)


def test_in_a_terminal_a_bulk_action_asks_first(cli: Cli, dlq_app: App) -> None:
    job_ids = fail_many(dlq_app, 3)
    for answer, status in (("n", "failed"), ("y", "queued")):
        screen = cli.terminal("requeue", "--queue", Q, "--reason", "back", "--rate", "1000")
        asked = screen.expect("requeue 3 jobs at 1000 a second?")
        assert "3 failed jobs match queue=charts" in asked
        screen.type(answer)
        assert screen.close() == 0
        assert statuses(dlq_app) == dict.fromkeys(job_ids, status)
