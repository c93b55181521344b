"""The server's edges, as an attacker meets them: the caller is checked before anything
of the request is read, only loopback `Host` names are answered, actions must say JSON,
bodies are read strictly and within a size, every answer has its security headers, and
a method the path does not take is a 405 that names every method it does."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from fastapi import FastAPI

from deadletter.api import create_api, openapi
from deadletter.app import App
from deadletter.config import ServeSettings
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.web import create_server
from tests.api.conftest import UNLIMITED, Server, ServerFactory, running
from tests.support.operator import fail

JSON = {"Content-Type": "application/json"}


def test_without_a_token_every_invalid_request_is_401_and_counts_against_the_rate(
    start_server: ServerFactory,
) -> None:
    server = start_server(serve=ServeSettings(rate_limit=0.01, rate_burst=5))
    with server.client() as anonymous:
        answers = [
            anonymous.get("/api/failures", params={"no_such_parameter": "1"}),
            anonymous.get("/api/failures?queue=a&queue=b"),
            anonymous.post("/api/bulk/dry-run", content=b"{not json", headers=JSON),
            anonymous.post("/api/bulk/dry-run", content=b'{"all": "\xff"}', headers=JSON),
            anonymous.post("/api/failures/x/requeue", content=b"x", headers={"Content-Type": ""}),
        ]
        limited = anonymous.get("/api/failures", params={"limit": "many"})
    assert [answer.status_code for answer in answers] == [401] * 5
    assert limited.status_code == 429


def test_healthz_keeps_its_own_bucket(start_server: ServerFactory) -> None:
    server = start_server(serve=ServeSettings(rate_limit=0.01, rate_burst=3))
    with server.client() as client:
        codes = [client.get("/api/failures").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        assert client.get("/healthz").status_code == 200


def test_tokens_cannot_be_managed_while_auth_is_off(start_server: ServerFactory) -> None:
    server = start_server(auth=False)
    with server.client() as client:
        assert client.post("/api/tokens", json={"name": "x", "scope": "admin"}).status_code == 403
        assert client.get("/api/tokens").status_code == 403
        assert client.delete("/api/tokens/initial-0").status_code == 403
        assert client.get("/api/queue/dlq/stats").status_code == 200


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_only_loopback_host_names_are_answered_unless_allowed(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    port = server.url.rsplit(":", 1)[1]
    with server.client(secrets["read"]) as client:
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "[::1]:80"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("attacker.example", f"attacker.example:{port}", "", "127.0.0.1.nip.io"):
            refused = client.get("/api/queue/dlq/stats", headers={"Host": host})
            assert refused.status_code == 421, host
            assert "allowed_hosts" in refused.json()["detail"]
        assert client.get("/docs", headers={"Host": "attacker.example"}).status_code == 421
    serve = replace(UNLIMITED, allowed_hosts=("dlq.example.com",))
    allowing = running(App(replace(dlq_app.settings, serve=serve)))
    with allowing as other_server, other_server.client(secrets["read"]) as client:
        headers = {"Host": "DLQ.example.com:443"}
        assert client.get("/api/queue/dlq/stats", headers=headers).status_code == 200
        other = {"Host": "other.example.com"}
        assert client.get("/api/queue/dlq/stats", headers=other).status_code == 421


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_operation_documents_the_421_of_a_foreign_host(
    server: Server, secrets: dict[str, str]
) -> None:
    # Found by `make fuzz`: a generated `host` header got an answer the document did not list.
    document = openapi.document()
    with server.client(secrets["admin"]) as client:
        for path, operations in document["paths"].items():
            url = re.sub(r"\{[^}]+\}", "x", path)
            for method, operation in operations.items():
                refused = client.request(method, url, headers={"Host": "attacker.example"})
                assert refused.status_code == 421, (method, path)
                declared = operation["responses"].get("421", {})
                schema = declared.get("content", {}).get("application/json", {}).get("schema")
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path)


def test_every_action_must_say_json_even_without_a_body(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    with server.client(secrets["operate"]) as client:
        for content_type in ("", "text/plain", "application/x-www-form-urlencoded"):
            refused = client.post(
                f"/api/failures/{job_id}/requeue", headers={"Content-Type": content_type}
            )
            assert refused.status_code == 415, content_type
        job = dlq_app.store.get_job(job_id)
        assert job is not None and job.status is JobState.FAILED
        utf8 = {"Content-Type": "application/json; charset=utf-8"}
        assert client.post(f"/api/failures/{job_id}/requeue", headers=utf8).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"reason": "x", "all": NaN}',
        b'{"sample_size": Infinity}',
        b'{"filter": {"since": -Infinity}}',
        b'{"filter": {"text": "\\ud800"}}',
        b'{"filter": {"since": 1e999}}',
        b"[" * 100 + b"]" * 100,
        b'{"filter": {"text": "caf\xe9"}}',
        b"{not json",
    ],
)
def test_a_body_that_is_not_strict_json_is_a_400_with_a_json_error(
    server: Server, secrets: dict[str, str], body: bytes
) -> None:
    with server.client(secrets["operate"]) as client:
        answer = client.post("/api/bulk/dry-run", content=body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"].startswith("the body")


def test_a_body_over_the_size_limit_is_413(server: Server, secrets: dict[str, str]) -> None:
    huge = b'{"reason": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    with server.client(secrets["operate"]) as client:
        answer = client.post("/api/failures/x/requeue", content=huge)
    assert answer.status_code == 413


def test_every_answer_has_security_headers_and_data_is_never_cached(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    with server.client(secrets["admin"]) as client:
        answers = {
            path: client.get(path)
            for path in (
                "/api/failures",
                f"/api/failures/{job_id}",
                "/api/nothing-here",
                "/healthz",
                "/metrics",
                "/docs",
            )
        }
        answers["export"] = client.post("/api/export", json={"reason": "audit"})
        answers["401"] = client.get("/api/failures", headers={"Authorization": "Bearer x"})
    for path, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        if path != "/docs":
            assert answer.headers["cache-control"] == "no-store", path
    assert "script-src" in answers["/docs"].headers["content-security-policy"]


@pytest.mark.parametrize("build", [create_api, create_server], ids=["api", "with-dashboard"])
def test_a_method_the_path_does_not_take_is_405_naming_every_method_it_does(
    dlq_app: App, secrets: dict[str, str], build: Callable[..., FastAPI]
) -> None:
    # `deadletter serve` mounts the dashboard at /: it must not take the API's paths.
    app = App(replace(dlq_app.settings, serve=UNLIMITED))
    with running(app, build=build) as server, server.client(secrets["admin"]) as client:
        dry_run = client.get("/api/bulk/dry-run")
        tokens = client.put("/api/tokens")
        export = client.get("/api/export")
        failures = client.put("/api/failures")
        unknown = client.get("/api/no-such-path")
        # The API's paths outside /api, FastAPI's own among them.
        beyond = {path: client.post(path) for path in ("/metrics", "/healthz", "/openapi.json")}
    assert dry_run.status_code == 405 and dry_run.headers["allow"] == "POST"
    assert tokens.status_code == 405 and tokens.headers["allow"] == "GET, POST"
    assert export.status_code == 405 and export.headers["allow"] == "POST"
    assert failures.status_code == 405 and failures.headers["allow"] == "GET"
    assert "not allowed" in dry_run.json()["detail"]
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    for path, answer in beyond.items():
        assert answer.status_code == 405 and answer.headers["allow"].startswith("GET"), path


def test_token_management_is_audited(dlq_app: App, server: Server, secrets: dict[str, str]) -> None:
    with server.client(secrets["admin"]) as admin:
        made = admin.post("/api/tokens", json={"name": "ci", "scope": "operate", "reason": "CI"})
        token = made.json()["token"]
        admin.request("DELETE", f"/api/tokens/{token['id']}", json={"reason": "rotated"})
    entries = audit_entries(dlq_app.store, target=token["id"]).items
    assert [(e.action, e.reason, e.details) for e in reversed(entries)] == [
        (AuditAction.TOKEN_CREATE, "CI", {"name": "ci", "scope": "operate"}),
        (AuditAction.TOKEN_REVOKE, "rotated", {"name": "ci", "scope": "operate"}),
    ]
    assert all(e.actor.startswith("api:admin-bot (token ") for e in entries)
    assert all(e.at <= time.time() for e in entries)
