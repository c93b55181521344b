"""`deadletter dlq rehandle` as an operator runs it once a parked letter's fault is
fixed, on every backend: the plan, a refusal to act unasked, the hand-back, the handler."""

from __future__ import annotations

import json

from deadletter.app import App
from deadletter.model import JobState
from tests.cli.conftest import Cli
from tests.support.operator import Q, park

REHANDLE = ("dlq", "rehandle")


def test_a_parked_letter_is_shown_then_handed_back_and_handled(cli: Cli, dlq_app: App) -> None:
    job_id = dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    dlq_app.worker(dlq=False).run(burst=True)
    [blocker] = park(dlq_app, Q)
    [parked] = dlq_app.store.list_jobs(queue=f"{Q}-dlq-parked")

    plan = cli.json(*REHANDLE, "--queue", Q, "--dry-run")["plan"]
    assert plan["dry_run"] and plan["count"] == 1
    assert [letter["job_id"] for letter in plan["letters"]] == [job_id]
    unasked = cli.run(*REHANDLE, "--queue", Q, "--reason", "fixed")
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr
    assert cli.run(*REHANDLE, job_id, "--yes").returncode == 2  # a reason is required
    assert dlq_app.store.list_jobs(queue=f"{Q}-dlq-parked") == [parked]

    blocker.rmdir()
    out = cli.ok(*REHANDLE, job_id, "--reason", "folder fixed", "--yes")
    assert f"job {job_id}, charts.fetch on {Q}" in out and "handed back 1 letter(s)" in out
    dlq_app.worker(queues=[Q], dlq_only=True).run(burst=True)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED

    again = cli.run(*REHANDLE, parked.id, job_id, "--reason", "again", "--yes", "--json")
    assert again.returncode == 1
    refused = {r["job_id"]: r["message"] for r in json.loads(again.stdout)["plan"]["refused"]}
    assert refused == {
        parked.id: f"no parked letter, dead letter or job {parked.id}",
        job_id: f"job {job_id} has no parked dead letter (the job is failed)",
    }


def test_without_an_id_or_a_filter_nothing_is_handed_back(cli: Cli, dlq_app: App) -> None:
    empty = cli.run(*REHANDLE, "--reason", "all", "--yes")
    assert empty.returncode == 2 and "filter" in empty.stderr
    assert "would hand back 0 letter(s)" in cli.ok(*REHANDLE, "--all", "--dry-run")
