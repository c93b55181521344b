"""POST /api/failures/reclassify: the operate scope, a dry run, then the move, audited."""

from __future__ import annotations

from dataclasses import replace

from deadletter.app import App
from deadletter.ops.audit import AuditAction, audit_entries
from tests.api.conftest import running
from tests.support.operator import fail, recovery_status

TIMEOUTS_ARE_OURS = {
    "name": "timeouts-are-ours",
    "class": "SYSTEM_ERROR",
    "exception_types": ["TimeoutError"],
}


def test_reclassify_over_http_after_a_dry_run(dlq_app: App, secrets: dict[str, str]) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    fail(dlq_app, "reports.build", "mystery", "q3")
    changed = App(replace(dlq_app.settings, rules=(TIMEOUTS_ARE_OURS,)))
    body = {"reason": "timeouts are ours"}
    with running(changed) as server:
        with server.client(secrets["read"]) as reader:
            assert reader.post("/api/failures/reclassify", json=body).status_code == 403
        with server.client(secrets["operate"]) as client:
            dry = client.post("/api/failures/reclassify", json={**body, "dry_run": True})
            assert dry.status_code == 200, dry.text
            assert dry.json()["counts"] == {"RECOVERABLE->SYSTEM_ERROR": 1}
            assert recovery_status(dlq_app, job_id) == "pending"
            done = client.post("/api/failures/reclassify", json=body).json()
            assert done["dry_run"] is False and done["examined"] == 2
            [move] = done["moves"]
            assert (move["job_id"], move["was"], move["now"], move["route"]) == (
                job_id,
                "RECOVERABLE",
                "SYSTEM_ERROR",
                "alert_ops",
            )
            assert client.post("/api/failures/reclassify", json={}).status_code == 422
    assert recovery_status(dlq_app, job_id) is None
    [entry] = audit_entries(dlq_app.store, action=AuditAction.RECLASSIFY).items
    assert entry.actor.startswith("api:operate-bot") and entry.reason == "timeouts are ours"
