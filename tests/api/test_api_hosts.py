"""A job of another system over HTTP: its details show its origin, and a requeue over
the API enqueues the one job that sends it back to its host."""

from __future__ import annotations

from deadletter.app import App
from deadletter.model import ErrorClass, HostAttempt, HostGaveUp, Origin
from tests.api.conftest import Server
from tests.support.operator import run_worker

ORIGIN = Origin("rq", "emails", "mail.send", "m-7", {"args": ["ann@example.com"], "kwargs": {}})


def adopt(app: App) -> str:
    attempt = HostAttempt(
        "e-1",
        "rq",
        "m-7",
        10.0,
        11.0,
        "host:1",
        "tests.HTTPError",
        "HTTP 503: down",
        "Traceback ...",
        503,
        ErrorClass.RECOVERABLE,
        "status:503",
    )
    event = HostGaveUp(attempt, ORIGIN, "rq", "rq-dlq", 3, "RQ gave up", {"origin": "rq"})
    [job_id] = app.store.record_host_events([event], now=12.0)
    app.add_foreign_queue("rq")
    run_worker(app)
    return job_id


def test_an_adopted_job_shows_its_origin_and_is_redriven_over_http(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = adopt(dlq_app)
    with server.client(secrets["read"]) as client:
        details = client.get(f"/api/failures/{job_id}").json()
    origin = details["origin"]
    assert (origin["system"], origin["queue"], origin["task"]) == ("rq", "emails", "mail.send")
    assert origin["original_id"] == "m-7"
    assert origin["arguments"]["args"] != ["ann@example.com"]  # personal data, redacted for read
    with server.client(secrets["operate"]) as client:
        answer = client.post(f"/api/failures/{job_id}/requeue", json={"reason": "back up"})
        assert answer.json()["outcome"] == "requeued"
    [redrive] = dlq_app.store.list_jobs(queue="deadletter.redrive")
    assert redrive.payload == {"args": [job_id, 1], "kwargs": {}}
