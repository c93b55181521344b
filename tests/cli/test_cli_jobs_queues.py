"""`deadletter jobs` and `deadletter queue pause|resume|list` as a person reads them, and
as a script does, on every backend: over jobs a real worker ran."""

from __future__ import annotations

from deadletter.app import App
from tests.cli.conftest import USER, Cli
from tests.cli.test_cli_reads import fail_one_of_each_class
from tests.support.operator import OTHER_Q, Q


def test_jobs_lists_what_the_worker_ran_in_a_table_and_as_json(cli: Cli, dlq_app: App) -> None:
    jobs = fail_one_of_each_class(dlq_app)
    listed = cli.json("jobs", "--queue", Q)
    on_q = [job for job in listed["jobs"] if job["queue"] == Q]
    assert listed["count"] == len(listed["jobs"]) == len(on_q) > 0
    timeout = next(job for job in on_q if job["id"] == jobs["RECOVERABLE"])
    assert (timeout["task"], timeout["status"], timeout["attempts"]) == (
        "charts.fetch",
        "failed",
        2,
    )
    assert timeout["worker_losses"] == 0
    assert "Timeout fetching" in timeout["last_error"]
    handled = cli.json("jobs", "--state", "succeeded")["jobs"]  # the dead letters handled
    assert handled and all(job["queue"].endswith("-dlq") for job in handled)

    screen = cli.ok("jobs", "--queue", Q)
    assert jobs["RECOVERABLE"] in screen and "charts.fetch" in screen
    # The exception's type without its module, for a narrow table.
    assert "TimeoutError: Timeout fetching" in screen and ".TimeoutError" not in screen
    assert f"{len(on_q)} shown of {len(on_q)} jobs on {Q}" in screen
    everything = cli.ok("jobs", "--limit", "1")
    total = sum(1 for job in cli.json("jobs", "--limit", "1000")["jobs"])
    assert f"1 shown of {total} jobs\n" in everything and OTHER_Q in cli.ok("jobs")


def test_pause_and_resume_say_when_nothing_changed_and_list_shows_the_pause(
    cli: Cli, dlq_app: App
) -> None:
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))  # on Q, waiting
    paused = cli.json("queue", "pause", Q, "--reason", "incident 7")
    assert (paused["queue"], paused["paused"], paused["changed"]) == (Q, True, True)
    assert paused["pause"]["paused_by"] == f"cli:{USER}"
    assert f"queue {Q}: already paused" in cli.ok("queue", "pause", Q, "--reason", "again")
    assert f"queue {Q}-dlq: paused" in cli.ok("queue", "pause", Q, "--dlq", "--reason", "x")

    screen = cli.ok("queue", "list")
    assert f"by cli:{USER}: incident 7" in screen and f"{Q}-dlq" in screen

    assert f"queue {Q}: resumed" in cli.ok("queue", "resume", Q, "--reason", "fixed")
    again = cli.json("queue", "resume", Q, "--reason", "fixed")
    assert (again["paused"], again["changed"], again["pause"]) == (False, False, None)
    assert f"queue {Q}: was not paused" in cli.ok("queue", "resume", Q, "--reason", "fixed")
    [row] = [line for line in cli.ok("queue", "list").splitlines() if f" {Q} " in line]
    assert "active" in row and " 1 " in row  # the job waiting
