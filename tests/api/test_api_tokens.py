"""Tokens made with `deadletter token` and over the API work at once, and stop at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from deadletter.app import App
from deadletter.ops.audit import AuditAction, audit_entries
from tests.api.conftest import Server

COMMAND = [sys.executable, "-c", "from deadletter.cli import main; main()"]


def token_command(app: App, folder: Path, *args: str) -> Any:
    """`deadletter token ... --json` in `folder`, on `app`'s database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    env["DEADLETTER_DATABASE_URL"] = app.settings.database_url
    done = subprocess.run(
        [*COMMAND, "token", *args, "--json"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_token_from_the_command_line_has_its_scope_until_revoked(
    dlq_app: App, server: Server, tmp_path: Path
) -> None:
    created = token_command(dlq_app, tmp_path, "create", "grafana", "--scope", "read")
    assert created["token"]["scopes"] == ["read"] and created["secret"].startswith("dl_")
    with server.client(created["secret"]) as client:
        assert client.get("/api/queue/dlq/stats").status_code == 200
        assert client.post("/api/failures/any/requeue").status_code == 403
        listed = token_command(dlq_app, tmp_path, "list")
        assert [t["name"] for t in listed["tokens"]] == ["grafana"]
        assert listed["tokens"][0]["last_used_at"] is not None
        token_command(dlq_app, tmp_path, "revoke", created["token"]["id"], "--reason", "left")
        assert client.get("/api/queue/dlq/stats").status_code == 401
    entries = audit_entries(dlq_app.store, target=created["token"]["id"]).items
    assert [(e.action, e.reason, e.details["scope"]) for e in reversed(entries)] == [
        (AuditAction.TOKEN_CREATE, "", "read"),
        (AuditAction.TOKEN_REVOKE, "left", "read"),
    ]
    assert all(e.actor.startswith("cli:") for e in entries)


def test_admins_manage_tokens_over_the_api(server: Server, secrets: dict[str, str]) -> None:
    with server.client(secrets["admin"]) as admin:
        made = admin.post("/api/tokens", json={"name": "ci", "scope": "operate"})
        assert made.status_code == 201
        token, secret = made.json()["token"], made.json()["secret"]
        names = [t["name"] for t in admin.get("/api/tokens").json()["tokens"]]
        assert "ci" in names and secret not in admin.get("/api/tokens").text
        with server.client(secret) as ci:
            assert ci.get("/api/tokens").status_code == 403  # operate is not admin
            assert admin.delete(f"/api/tokens/{token['id']}").status_code == 200
            assert ci.get("/api/recovery").status_code == 401
        assert admin.delete("/api/tokens/no-such-token").status_code == 404
