"""Tokens and scopes: 401 before 403 before 404, so that a caller without the right to
see a job cannot learn whether it exists; PII redacted for every scope below admin."""

from __future__ import annotations

import time

import httpx
import pytest

from deadletter.app import App
from deadletter.ops import tokens
from deadletter.ops.audit import audit_entries
from tests.api.conftest import Server, ServerFactory
from tests.support.operator import Downstream, fail

MISSING = "job_does_not_exist"


def status_and_body(response: httpx.Response) -> tuple[int, object, str | None]:
    return response.status_code, response.json(), response.headers.get("WWW-Authenticate")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/failures/{job}", None),
        ("POST", "/api/failures/{job}/requeue", {"reason": "retry"}),
        ("POST", "/api/failures/{job}/abandon", {"reason": "obsolete"}),
    ],
)
def test_without_a_valid_token_a_missing_job_looks_like_an_existing_one(
    dlq_app: App,
    server: Server,
    secrets: dict[str, str],
    method: str,
    path: str,
    body: object,
) -> None:
    existing = fail(dlq_app, "charts.fetch", "tiles/1")
    revoked = tokens.create(dlq_app.store, "gone", ["admin"], now=time.time(), actor="test")
    tokens.revoke(dlq_app.store, revoked[0].id, now=time.time(), actor="test")
    callers = {
        "no token": None,
        "malformed": "not-a-token",
        "unknown": "dl_" + "A" * 43,
        "revoked": revoked[1],
    }
    for name, secret in callers.items():
        with server.client(secret) as client:
            answers = [
                status_and_body(client.request(method, path.format(job=job), json=body))
                for job in (existing, MISSING)
            ]
        assert answers[0] == answers[1], name
        code, _, challenge = answers[0]
        assert code == 401 and challenge is not None and challenge.startswith("Bearer"), name


@pytest.mark.parametrize(
    ("scope", "method", "path", "body"),
    [
        ("read", "POST", "/api/failures/{job}/requeue", {}),
        ("read", "POST", "/api/failures/{job}/abandon", {"reason": "obsolete"}),
        ("operate", "POST", "/api/export", {"filter": {"job_id": ["{job}"]}, "reason": "x"}),
    ],
)
def test_a_token_without_the_scope_gets_403_whether_or_not_the_job_exists(
    dlq_app: App,
    server: Server,
    secrets: dict[str, str],
    scope: str,
    method: str,
    path: str,
    body: object,
) -> None:
    existing = fail(dlq_app, "charts.fetch", "tiles/1")
    with server.client(secrets[scope]) as client:
        answers = [
            status_and_body(client.request(method, path.format(job=job), json=body))
            for job in (existing, MISSING)
        ]
    assert answers[0] == answers[1]
    code, _, challenge = answers[0]
    assert code == 403 and challenge is not None and "insufficient_scope" in challenge


def test_with_the_scope_a_missing_job_is_404_and_an_existing_one_is_acted_on(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    existing = fail(dlq_app, "charts.fetch", "tiles/1")
    with server.client(secrets["operate"]) as client:
        assert client.get(f"/api/failures/{MISSING}").status_code == 404
        assert client.post(f"/api/failures/{MISSING}/requeue").status_code == 404
        assert client.get(f"/api/failures/{existing}").status_code == 200
        assert client.post(f"/api/failures/{existing}/requeue").status_code == 200


def test_read_sees_personal_data_redacted_and_admin_sees_it_whole(
    dlq_app: App, server: Server, secrets: dict[str, str], downstream: Downstream
) -> None:
    key = "ana.lopez@example.com/+1 415 555 2671"
    job_id = fail(dlq_app, "charts.fetch", key)
    read, admin = server.client(secrets["read"]), server.client(secrets["admin"])
    with read, admin:
        shown = read.get(f"/api/failures/{job_id}").json()
        whole = admin.get(f"/api/failures/{job_id}").json()
        listed = read.get("/api/failures").json()["failures"][0]
        recent = read.get("/api/queue/dlq/failures").json()["failures"][0]
    texts = [
        shown["failure"]["error_message"],
        shown["attempts"][-1]["message"],
        shown["attempts"][-1]["traceback"],
        str(shown["job"]["payload"]),
        str(shown["forensics"]),
        listed["error_message"],
        recent["error_message"],
    ]
    for text in texts:
        assert "ana.lopez@example.com" not in text and "555 2671" not in text, text
    assert "[EMAIL]" in shown["failure"]["error_message"]
    assert "[PHONE]" in shown["failure"]["error_message"]
    assert shown["job"]["id"] == job_id and shown["failure"]["job_id"] == job_id
    assert key in whole["failure"]["error_message"]
    assert whole["job"]["payload"] == {"args": [key], "kwargs": {}}


def test_actions_are_audited_under_the_tokens_name(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    with server.client(secrets["operate"]) as client:
        client.post(f"/api/failures/{job_id}/abandon", json={"reason": "obsolete tile"})
    [entry] = audit_entries(dlq_app.store, target=job_id).items
    token = next(t for t in tokens.list_tokens(dlq_app.store) if t.name == "operate-bot")
    assert entry.actor == f"api:operate-bot (token {token.id})"
    assert entry.reason == "obsolete tile"


def test_without_auth_every_caller_is_an_admin_named_by_its_address(
    dlq_app: App, start_server: ServerFactory
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    open_server = start_server(auth=False)
    with open_server.client() as client:
        assert client.post(f"/api/failures/{job_id}/requeue").status_code == 200
    [entry] = audit_entries(dlq_app.store, target=job_id).items
    assert entry.actor == "api:anonymous at 127.0.0.1 (auth off)"
