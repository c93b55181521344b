"""Requeue, abandon and review over HTTP, with a real worker running what was requeued."""

from __future__ import annotations

import threading

import httpx

from deadletter.app import App
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from tests.api.conftest import Server
from tests.support.operator import Downstream, fail, recovery_status, run_worker


def test_a_job_requeued_over_http_runs_again_and_is_recovered(
    dlq_app: App, server: Server, secrets: dict[str, str], downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    downstream.healthy.add("tiles/1")
    with server.client(secrets["operate"]) as client:
        answer = client.post(f"/api/failures/{job_id}/requeue", json={"reason": "partner is back"})
        assert answer.status_code == 200
        assert answer.json() == {
            "target": job_id,
            "outcome": "requeued",
            "message": f"job {job_id} is queued again on charts",
        }
        assert client.get("/api/recovery", params={"status": "requeued"}).json()["count"] == 1
        run_worker(dlq_app)
        recovered = client.get("/api/recovery", params={"status": "recovered"}).json()
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.status is JobState.SUCCEEDED
    assert downstream.runs["tiles/1"] == 3  # two failed attempts, then the requeued run
    assert [entry["job_id"] for entry in recovered["recovery"]] == [job_id]
    assert recovery_status(dlq_app, job_id) == "recovered"


def test_two_requeues_at_once_run_the_job_once(
    dlq_app: App, server: Server, secrets: dict[str, str], downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/2")
    downstream.healthy.add("tiles/2")
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def click() -> None:
        with server.client(secrets["operate"]) as client:
            barrier.wait()
            answers.append(client.post(f"/api/failures/{job_id}/requeue"))

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409, 409, 409]
    refused = [answer.json() for answer in answers if answer.status_code == 409]
    assert {body["outcome"] for body in refused} == {"already_requeued"}
    run_worker(dlq_app)
    assert downstream.runs["tiles/2"] == 3
    requeues = audit_entries(dlq_app.store, target=job_id, action=AuditAction.REQUEUE).items
    assert len(requeues) == 1


def test_a_corrected_payload_replaces_the_old_one_which_is_kept(
    dlq_app: App, server: Server, secrets: dict[str, str], downstream: Downstream
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/broken")
    downstream.healthy.add("tiles/fixed")
    with server.client(secrets["operate"]) as client:
        body = {"reason": "typo in the key", "payload": {"args": ["tiles/fixed"]}}
        assert client.post(f"/api/failures/{job_id}/requeue", json=body).status_code == 200
    run_worker(dlq_app)
    assert recovery_status(dlq_app, job_id) == "recovered"
    with server.client(secrets["admin"]) as client:
        details = client.get(f"/api/failures/{job_id}").json()
    assert details["job"]["payload"] == {"args": ["tiles/fixed"], "kwargs": {}}
    [old] = details["payload_history"]
    assert old["payload"] == {"args": ["tiles/broken"], "kwargs": {}}
    assert old["replaced_by"].startswith("api:operate-bot")


def test_abandon_needs_a_reason_and_happens_once(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/3")
    url = f"/api/failures/{job_id}/abandon"
    with server.client(secrets["operate"]) as client:
        assert client.post(url, json={}).status_code == 422
        blank = client.post(url, json={"reason": "   "})
        assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["reason"]
        assert client.post(url, json={"reason": "tile retired"}).status_code == 200
        again = client.post(url, json={"reason": "tile retired"})
    assert again.status_code == 409 and again.json()["outcome"] == "already_abandoned"
    assert recovery_status(dlq_app, job_id) == "abandoned"


def test_the_review_log_lists_unknown_failures_until_reviewed(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "reports.build", "mystery", "q4")
    with server.client(secrets["operate"]) as client:
        [entry] = client.get("/api/review").json()["review"]
        assert entry["job_id"] == job_id and entry["reviewed_at"] is None
        url = f"/api/review/{entry['dead_letter_id']}"
        assert client.post(url, json={"note": "a renamed series"}).status_code == 200
        assert client.post(url).status_code == 409
        assert client.get("/api/review").json()["count"] == 0
        [done] = client.get("/api/review", params={"state": "reviewed"}).json()["review"]
    assert done["note"] == "a renamed series" and done["reviewed_by"].startswith("api:")
