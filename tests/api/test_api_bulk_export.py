"""Bulk runs over HTTP (dry run, paced run, control) and streamed exports."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx

from deadletter.api.bulkruns import BulkJob
from deadletter.app import App
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.bulk import BulkAction, BulkRun
from deadletter.ops.filters import FailureFilter
from tests.api.conftest import Server, fail_many
from tests.contract.test_secrets_at_rest import LEAK, LEFTOVERS, every_table
from tests.support.operator import Q, fail


def wait_until_stopped(client: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        status: dict[str, Any] = client.get(f"/api/bulk/{run_id}").json()
        if status["state"] not in ("running", "paused"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def test_a_dry_run_counts_and_samples_what_a_run_then_moves(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    fail_many(dlq_app, 6)
    fail(dlq_app, "reports.build", "invalid", "q1")
    with server.client(secrets["operate"]) as client:
        everything = client.post("/api/bulk/dry-run", json={})
        assert everything.status_code == 422  # never all by accident
        typo = client.post("/api/bulk/dry-run", json={"filter": {"quue": Q}})
        assert typo.status_code == 422  # a misspelt field is not a wider filter
        plan = client.post("/api/bulk/dry-run", json={"filter": {"queue": Q}, "sample_size": 4})
        assert plan.status_code == 200
        assert plan.json()["count"] == 6 and len(plan.json()["sample"]) == 4
        started = client.post(
            "/api/bulk",
            json={
                "action": "requeue",
                "filter": {"queue": Q},
                "reason": "partner is back",
                "rate": 1000,
            },
        )
        assert started.status_code == 202 and started.json()["started_by"].startswith("api:")
        status = wait_until_stopped(client, started.json()["id"])
        assert client.post(f"/api/bulk/{status['id']}/pause").status_code == 409
        listed = client.get("/api/bulk").json()
    assert status["state"] == "done" and status["progress"]["moved"] == 6
    assert status["filter"] == {"queue": Q}
    assert [run["id"] for run in listed["runs"]] == [status["id"]]
    assert len(audit_entries(dlq_app.store, action=AuditAction.BULK_REQUEUE).items) == 1


def test_a_paced_run_can_be_paused_resumed_and_cancelled(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    fail_many(dlq_app, 30)
    with server.client(secrets["operate"]) as client:
        started = client.post(
            "/api/bulk",
            json={"action": "abandon", "filter": {"queue": Q}, "reason": "retired", "rate": 5},
        ).json()
        url = f"/api/bulk/{started['id']}"
        assert client.post(f"{url}/pause").json()["state"] == "paused"
        time.sleep(0.3)  # a batch taken before the pause may still finish
        moved = client.get(url).json()["progress"]["moved"]
        time.sleep(0.5)
        assert client.get(url).json()["progress"]["moved"] == moved  # nothing while paused
        assert client.post(f"{url}/resume").json()["state"] == "running"
        client.post(f"{url}/cancel")
        status = wait_until_stopped(client, started["id"])
        assert client.get("/api/bulk/0123abcd").status_code == 404
    assert status["state"] == "cancelled" and status["progress"]["moved"] < 30
    assert status["detail"].startswith("cancelled")


def test_exports_stream_every_format_and_payloads_only_when_asked(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_ids = set(fail_many(dlq_app, 3))
    with server.client(secrets["admin"]) as client:
        jsonl = {"format": "jsonl", "reason": "triage"}
        with client.stream("POST", "/api/export", json=jsonl) as streamed:
            assert streamed.headers["content-type"] == "application/x-ndjson"
            assert "attachment" in streamed.headers["content-disposition"]
            lines = [json.loads(line) for line in streamed.iter_lines() if line]
        csv_of_q = {"format": "csv", "filter": {"queue": Q}, "reason": "triage"}
        table = client.post("/api/export", json=csv_of_q).text
        whole = {"format": "json", "include_payload": True, "reason": "incident 42"}
        array = client.post("/api/export", json=whole).json()
        assert client.post("/api/export", json={"format": "csv"}).status_code == 422
    assert {row["job_id"] for row in lines} == job_ids and "payload" not in lines[0]
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {row["job_id"] for row in rows} == job_ids and rows[0]["queue"] == Q
    assert {row["job_id"] for row in array} == job_ids
    assert all(row["payload"]["args"][0].startswith("tiles/") for row in array)
    exports = audit_entries(dlq_app.store, action=AuditAction.EXPORT).items
    assert len(exports) == 3 and exports[0].reason == "incident 42"
    assert exports[0].actor.startswith("api:admin-bot")


def test_bulk_runs_and_exports_keep_secrets_of_their_filter_out_of_answers_and_audit(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    # Searching for a secret is searching for text: what is kept and shown of the
    # search (the run's status, the audit log's target and details) must not hold it.
    leaky = {"queue": Q, "text": LEAK}
    with server.client(secrets["admin"]) as admin, server.client(secrets["read"]) as reader:
        started = admin.post(
            "/api/bulk", json={"action": "abandon", "filter": leaky, "reason": f"why {LEAK}"}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        wait_until_stopped(admin, run_id)
        exported = admin.post("/api/export", json={"filter": leaky, "reason": f"why {LEAK}"})
        assert exported.status_code == 200
        answers = [
            started.text,
            *(c.get(f"/api/bulk/{run_id}").text for c in (admin, reader)),
            *(c.get("/api/bulk").text for c in (admin, reader)),
            *(c.get("/api/audit").text for c in (admin, reader)),
        ]
    # A run that failed says why with an exception's text, to every scope.
    run = BulkRun(
        dlq_app.store, FailureFilter(queue=Q), action=BulkAction.ABANDON, actor="t", reason="r",
        policy=dlq_app.policy,
    )  # fmt: skip
    failed = BulkJob("f1", run, "t", 0.0, error=f"OperationalError: {LEAK}")
    seen = "\n".join([*answers, every_table(dlq_app.store), failed.detail or ""])
    assert "[REDACTED]" in seen and "OperationalError" in seen
    for leftover in LEFTOVERS:
        assert leftover not in seen, leftover
