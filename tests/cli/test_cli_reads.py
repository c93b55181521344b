"""stats, failures, groups, show, recovery and review read what the worker recorded."""

from __future__ import annotations

import time

from deadletter.app import App
from deadletter.ops.reports import stats_json
from tests.cli.conftest import USER, Cli
from tests.support.operator import OTHER_Q, Q, run_worker, table


def fail_one_of_each_class(app: App) -> dict[str, str]:
    """A failed job of each class, by class, from one worker run."""
    fetch, build = app.tasks["charts.fetch"], app.tasks["reports.build"]
    jobs = {
        "RECOVERABLE": app.enqueue(fetch.spec("tiles/1")),
        "USER_ERROR": app.enqueue(build.spec("invalid", "q3")),
        "SYSTEM_ERROR": app.enqueue(build.spec("server_error", "7")),
        "UNKNOWN": app.enqueue(build.spec("mystery", "9")),
    }
    run_worker(app)
    return jobs


def test_stats_failures_and_groups_say_what_the_database_holds(cli: Cli, dlq_app: App) -> None:
    jobs = fail_one_of_each_class(dlq_app)
    stats = stats_json(dlq_app.store.dlq_stats(now=time.time()), dlq_app.store.paused_queues())
    assert cli.json("stats") == stats
    assert "total_failed" in cli.ok("stats") and "pending_recovery" in cli.ok("stats")

    first = cli.json("failures", "--limit", "3")
    rest = cli.json("failures", "--limit", "3", "--cursor", first["next_cursor"])
    listed = first["failures"] + rest["failures"]
    assert (first["count"], rest["count"], rest["next_cursor"]) == (3, 1, None)
    classes = dict(table(dlq_app, "SELECT job_id, error_class FROM dlq_failures"))
    assert {f["job_id"]: f["error_class"] for f in listed} == classes
    assert {f["job_id"] for f in listed} == set(jobs.values())
    timeout = next(f for f in listed if f["job_id"] == jobs["RECOVERABLE"])
    assert timeout["retry_count"] == 1 and isinstance(timeout["created_at"], int)
    assert timeout["recovery_status"] == "pending"
    assert "Timeout fetching" in timeout["error_message"]

    def ids(*filters: str) -> set[str]:
        return {f["job_id"] for f in cli.json("failures", *filters)["failures"]}

    assert ids("--class", "USER_ERROR") == {jobs["USER_ERROR"]}
    assert ids("--queue", OTHER_Q, "--text", "SERIES_9") == {jobs["UNKNOWN"]}
    assert ids("--since", "1h", "--queue", Q) == {jobs["RECOVERABLE"]}
    assert ids("--until", "1h") == set()
    groups = cli.json("groups")["groups"]
    fingerprints = table(dlq_app, "SELECT fingerprint, count FROM dlq_error_groups")
    assert {(g["fingerprint"], g["count"]) for g in groups} == set(fingerprints)
    shown = cli.ok("groups")
    assert "failure groups" in shown and all(fp in shown for fp, _ in fingerprints)
    screen = cli.ok("failures")
    assert all(job_id in screen for job_id in jobs.values()) and "Timeout fetching" in screen


def test_show_gives_attempts_traceback_rule_group_and_forensics(cli: Cli, dlq_app: App) -> None:
    job_id = fail_one_of_each_class(dlq_app)["RECOVERABLE"]
    details = cli.json("show", job_id)
    [(fingerprint, rule)] = table(
        dlq_app, "SELECT fingerprint, rule FROM dlq_failures WHERE job_id = ?", job_id
    )
    failure = details["failure"]
    assert (failure["error_class"], failure["rule"], failure["fingerprint"]) == (
        "RECOVERABLE",
        rule,
        fingerprint,
    )
    assert [a["number"] for a in details["attempts"]] == [1, 2]
    assert "TimeoutError" in details["attempts"][-1]["traceback"]
    assert details["group"]["count"] == 1 and details["forensics_error"] is None
    assert details["forensics"]["fingerprint"] == fingerprint
    assert details["job"]["payload"] == {"args": ["tiles/1"], "kwargs": {}}

    screen = cli.ok("show", job_id)
    for shown in (job_id, "RECOVERABLE", rule, fingerprint, "last traceback", "forensic record"):
        assert shown in screen
    missing = cli.run("show", "job_nope")
    assert missing.returncode == 1 and "no job job_nope" in missing.stderr


def test_recovery_and_review_list_and_mark(cli: Cli, dlq_app: App) -> None:
    jobs = fail_one_of_each_class(dlq_app)
    pending = cli.json("recovery", "--status", "pending")["recovery"]
    assert [entry["job_id"] for entry in pending] == [jobs["RECOVERABLE"]]
    assert cli.json("recovery", "--status", "recovered")["recovery"] == []
    assert cli.run("recovery", "--status", "lost").returncode == 2

    [entry] = cli.json("review")["review"]
    assert entry["job_id"] == jobs["UNKNOWN"]
    marked = cli.json("review", "mark", entry["dead_letter_id"], "--note", "a missing series")
    assert marked["outcome"] == "reviewed"
    assert cli.json("review")["review"] == []
    assert len(cli.json("review", "--all")["review"]) == 1
    [(by, note)] = table(dlq_app, "SELECT reviewed_by, note FROM dlq_review_log")
    assert (by, note) == (f"cli:{USER}", "a missing series")
    again = cli.run("review", "mark", entry["dead_letter_id"])
    assert again.returncode == 1 and "already_reviewed" in again.stdout


def test_a_cursor_of_other_filters_or_a_forged_one_is_a_usage_error(cli: Cli, dlq_app: App) -> None:
    fail_one_of_each_class(dlq_app)
    cursor = cli.json("failures", "--limit", "1", "--queue", OTHER_Q)["next_cursor"]
    assert cli.json("failures", "--limit", "1", "--queue", OTHER_Q, "--cursor", cursor)["count"]
    for args in (
        ["failures", "--cursor", cursor],
        ["failures", "--queue", Q, "--cursor", cursor],
        ["recovery", "--cursor", cursor],
        ["failures", "--cursor", ""],
        ["failures", "--cursor", "WzFlOTk5LCJ4IiwidCJd"],  # [1e999,"x","t"]
        ["review", "--cursor", "x" * 5000],
    ):
        done = cli.run(*args)
        assert done.returncode == 2 and "cursor" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
