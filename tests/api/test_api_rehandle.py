"""POST /api/dlq/rehandle: the operate scope, a dry run, then the hand-back, audited, and
the handler's real pass over the letter handed back."""

from __future__ import annotations

from deadletter.app import App
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from tests.api.conftest import Server
from tests.support.operator import Q, park

PATH = "/api/dlq/rehandle"


def test_rehandle_over_http_after_a_dry_run(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    dlq_app.worker(dlq=False).run(burst=True)
    [blocker] = park(dlq_app, Q)
    body = {"filter": {"queue": Q}, "reason": "folder fixed"}
    with server.client(secrets["read"]) as reader:
        assert reader.post(PATH, json=body).status_code == 403
    with server.client(secrets["operate"]) as client:
        dry = client.post(PATH, json={**body, "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.headers["content-type"] == "application/json"
        assert dry.json()["count"] == 1 and dry.json()["letters"][0]["job_id"] == job_id
        assert len(dlq_app.store.list_jobs(queue=f"{Q}-dlq-parked")) == 1
        assert client.post(PATH, json={"reason": "x"}).status_code == 422  # no id, no filter
        assert client.post(PATH, json={**body, "filter": {"group": "x"}}).status_code == 422
        assert client.post(PATH, json={"filter": {"queue": Q}}).status_code == 422  # no reason

        blocker.rmdir()
        done = client.post(PATH, json=body).json()
        assert done["dry_run"] is False and [x["job_id"] for x in done["letters"]] == [job_id]
        again = client.post(PATH, json={"ids": [job_id], "reason": "again"}).json()
        message = f"job {job_id} has no parked dead letter (the job is dead_lettered)"
        assert again["letters"] == [] and again["refused"] == [
            {"job_id": job_id, "message": message}
        ]
    dlq_app.worker(queues=[Q], dlq_only=True).run(burst=True)
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.FAILED
    [entry] = audit_entries(dlq_app.store, action=AuditAction.REHANDLE).items
    assert entry.actor.startswith("api:operate-bot") and entry.target == job_id
