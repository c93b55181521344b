"""Queues and workers over HTTP: pause and resume with `operate`, audited with the
token's name; the queues, the live workers and the pause on `/metrics` with `read`."""

from __future__ import annotations

import threading
import time

from deadletter.app import App
from deadletter.ops.audit import AuditAction, audit_entries
from tests.api.conftest import Server
from tests.support.operator import OTHER_Q, Q


def test_pause_and_resume_need_operate_and_a_reason_and_are_audited(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    with server.client(secrets["read"]) as reader:
        refused = reader.post(f"/api/queues/{Q}/pause", json={"reason": "incident"})
        assert refused.status_code == 403
    with server.client(secrets["operate"]) as client:
        assert client.post(f"/api/queues/{Q}/pause", json={}).status_code == 422
        assert client.post(f"/api/queues/{Q}/pause", json={"reason": ""}).status_code == 422
        paused = client.post(f"/api/queues/{Q}/pause", json={"reason": "incident 7"})
        assert paused.status_code == 200
        body = paused.json()
        assert (body["queue"], body["paused"], body["changed"]) == (Q, True, True)
        assert body["pause"]["reason"] == "incident 7"
        assert body["pause"]["paused_by"].startswith("api:operate-bot")
        again = client.post(f"/api/queues/{Q}/pause", json={"reason": "x"}).json()
        assert not again["changed"] and again["pause"]["reason"] == "incident 7"
        stats = client.get("/api/queue/dlq/stats").json()
        assert [p["queue"] for p in stats["paused_queues"]] == [Q]
        resumed = client.post(f"/api/queues/{Q}/resume", json={"reason": "fixed"}).json()
        assert resumed == {"queue": Q, "paused": False, "changed": True, "pause": None}
    actions = [entry.action for entry in audit_entries(dlq_app.store, target=Q).items]
    assert actions == [AuditAction.QUEUE_RESUME, AuditAction.QUEUE_PAUSE]


def test_queues_workers_and_metrics_show_the_fleet(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    dlq_app.enqueue(dlq_app.tasks["charts.fetch"].spec("tiles/1"))
    with server.client(secrets["operate"]) as client:
        client.post(f"/api/queues/{OTHER_Q}/pause", json={"reason": "incident"})
        client.post(f"/api/queues/{Q}/pause", json={"reason": "hold"})
        worker = dlq_app.worker(queues=[Q])
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not (found := client.get("/api/workers").json())["count"]:
                assert time.monotonic() < deadline, "the worker never showed"
                time.sleep(0.05)
            queues = {q["queue"]: q for q in client.get("/api/queues").json()["queues"]}
            metrics = client.get("/metrics").text
        finally:
            worker.stop()
            thread.join()
    [live] = found["workers"]
    assert (live["name"], live["queues"], live["running"]) == (worker.name, [Q, f"{Q}-dlq"], [])
    assert queues[Q]["counts"] == {"queued": 1} and queues[Q]["consumers"] == [worker.name]
    assert queues[OTHER_Q]["paused"] and queues[OTHER_Q]["pause"]["reason"] == "incident"
    assert f'deadletter_queue_paused{{queue="{OTHER_Q}"}} 1.0' in metrics
    assert "deadletter_workers_live 1.0" in metrics
    assert f'deadletter_queue_consumers{{queue="{Q}"}} 1.0' in metrics


def test_cancel_needs_operate_and_a_reason_dry_runs_then_cancels_audited(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    spec = dlq_app.tasks["charts.fetch"].spec
    ids = [dlq_app.enqueue(spec(f"tiles/{i}").options(delay=3600)) for i in range(2)]
    asked = {"queue": Q, "reason": "bad deploy"}
    with server.client(secrets["read"]) as reader:
        assert reader.post("/api/jobs/cancel", json=asked).status_code == 403
    with server.client(secrets["operate"]) as client:
        assert client.post("/api/jobs/cancel", json={"queue": Q}).status_code == 422
        assert client.post("/api/jobs/cancel", json={"reason": "all"}).status_code == 422
        dry = client.post("/api/jobs/cancel", json={**asked, "dry_run": True}).json()
        assert dry["dry_run"] and sorted(job["id"] for job in dry["jobs"]) == sorted(ids)
        assert all(dlq_app.store.get_job(i) is not None for i in ids)
        done = client.post("/api/jobs/cancel", json={**asked, "job_ids": [ids[0], "nope"]})
        assert done.status_code == 200
        assert [job["id"] for job in done.json()["jobs"]] == [ids[0]]
        assert done.json()["refused"] == [{"job_id": "nope", "message": "no job nope"}]
    assert dlq_app.store.get_job(ids[0]) is None and dlq_app.store.get_job(ids[1]) is not None
    [entry] = audit_entries(dlq_app.store, target=ids[0]).items
    assert entry.action is AuditAction.CANCEL and entry.actor.startswith("api:operate-bot")
