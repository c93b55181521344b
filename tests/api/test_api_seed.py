"""The seed's two endpoints answer in the seed's exact shapes, with the seed's figures."""

from __future__ import annotations

from deadletter.app import App
from tests.api.conftest import Server, fail_many
from tests.support.operator import fail, run_worker


def job_times(app: App, job_id: str) -> tuple[int, int]:
    job = app.store.get_job(job_id)
    assert job is not None and job.completed_at is not None
    return int(job.created_at), int(job.completed_at)


def test_stats_and_recent_failures_have_the_seeds_shapes(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    fetch = dlq_app.tasks["charts.fetch"]
    timeout = dlq_app.enqueue(fetch.spec("tiles/9").options(labels={"site_name": "building-a"}))
    run_worker(dlq_app)
    invalid = fail(dlq_app, "reports.build", "invalid", "q3")

    with server.client(secrets["read"]) as client:
        stats = client.get("/api/queue/dlq/stats")
        recent = client.get("/api/queue/dlq/failures", params={"limit": 20})

    assert stats.status_code == 200 and recent.status_code == 200
    assert stats.json() == {
        "dlq": {
            "total_failed": 2,
            "permanent_failures": 1,  # the user error; the timeout waits in recovery
            "last_24h": 2,
            "avg_retries": 0.5,  # the timeout retried once, the user error never
            "recovery": {
                "total_in_recovery": 1,
                "pending_recovery": 1,
                "recovered": 0,
                "abandoned": 0,
                "requeued": 0,
            },
        },
        "paused_queues": [],
    }
    created, completed = job_times(dlq_app, timeout)
    invalid_created, invalid_completed = job_times(dlq_app, invalid)
    body = recent.json()
    assert body["count"] == 2
    by_id = {row["job_id"]: row for row in body["failures"]}
    assert by_id[timeout] == {
        "job_id": timeout,
        "site_name": "building-a",
        "error_message": "Timeout fetching tiles/9 after 30s",
        "retry_count": 1,
        "created_at": created,
        "completed_at": completed,
        "queue": "charts",
        "task": "charts.fetch",
        "error_class": "RECOVERABLE",
        "rule": by_id[timeout]["rule"],
        "fingerprint": by_id[timeout]["fingerprint"],
    }
    assert by_id[invalid]["retry_count"] == 0 and by_id[invalid]["site_name"] is None
    assert (by_id[invalid]["created_at"], by_id[invalid]["completed_at"]) == (
        invalid_created,
        invalid_completed,
    )
    assert by_id[invalid]["error_class"] == "USER_ERROR"
    assert all(isinstance(row["rule"], str) and row["fingerprint"] for row in by_id.values())


def test_the_limit_bounds_recent_failures(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    fail_many(dlq_app, 3)
    with server.client(secrets["read"]) as client:
        body = client.get("/api/queue/dlq/failures", params={"limit": 2}).json()
        refused = client.get("/api/queue/dlq/failures", params={"limit": 0})
    assert body["count"] == 2 and len(body["failures"]) == 2
    assert refused.status_code == 422
