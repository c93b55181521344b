"""No secret reaches the database raw: an attempt's error is redacted where it is
recorded, and what operators type (reasons, notes) is redacted on write."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import InvalidInput
from deadletter.integrations.core import Failed, Recorder
from deadletter.integrations.imports import Held, Run, import_failures
from deadletter.model import JobState, Origin
from deadletter.ops import recovery, review, tokens
from deadletter.store.base import Store

# One of each kind of secret the rules know, each with a part no rule leaves behind.
SECRETS = {
    "aws": "AKIACANARY0123456789",
    "bearer": "Authorization: Bearer cnry.bearer.9f8e7d6c5b4a",
    "url": "postgres://app:Pw0rdCanary@db.example.com/app",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOjF9.c2lnbmF0dXJlY2FuYXJ5",
    "password": "password=hunter2canary",
    "card": "4539 1488 0343 6467",
}
LEFTOVERS = (
    "CANARY0123456789",
    "cnry.bearer",
    "Pw0rdCanary",
    "eyJjYW5hcnkiOjF9",
    "hunter2canary",
    "4539 1488 0343 6467",
)
LEAK = "; ".join(SECRETS.values())
LEAKY = {"leaky": {"max_retries": 1, "backoff_base": 0.0}}


def every_table(store: Store) -> str:
    """Every row of every table, as text."""
    return "\n".join(every_column(store).values())


def every_column(store: Store) -> dict[str, str]:
    """Every column of every table, as text, by `table.column`."""
    columns: dict[str, str] = {}
    with store.snapshot() as execute:
        if store.url.startswith("sqlite"):
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        for (name,) in execute(query, ()).fetchall():
            cursor: Any = execute(f"SELECT * FROM {name}", ())
            rows = cursor.fetchall()
            for index, column in enumerate(cursor.description):
                columns[f"{name}.{column[0]}"] = "\n".join(repr(row[index]) for row in rows)
    return columns


def app_in(store_url: str, tmp_path: Path, **more: Any) -> App:
    """An app on `store_url` whose files are in `tmp_path`, with `more` settings."""
    settings = {
        "database_url": store_url,
        "blob_url": str(tmp_path / "blobs"),
        "dlq": {"log_file": str(tmp_path / "dlq.log")},
    }
    return App(settings_from_mapping({**settings, **more}))


def test_an_attempts_error_is_stored_without_secrets(store_url: str, tmp_path: Path) -> None:
    app = app_in(store_url, tmp_path, queues=LEAKY)

    @app.task(queue="leaky", name="leaky.connect")
    def connect() -> None:
        try:
            raise ConnectionError(f"could not reach {SECRETS['url']}")
        except ConnectionError as exc:
            raise RuntimeError(f"sync failed: {LEAK}") from exc

    job_id = app.enqueue(connect.spec())
    app.worker(dlq=False).run(burst=True)
    job = app.store.get_job(job_id)
    attempts = app.store.attempts(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED and len(attempts) == 2
    stored = every_table(app.store)
    assert "[REDACTED]" in (attempts[0].message or "") and "sync failed" in stored
    assert "[CARD]" in (job.last_error or "")
    for leftover in LEFTOVERS:
        assert leftover not in stored, leftover
    app.close()


def test_operator_text_is_stored_without_secrets(dlq_app: App) -> None:
    from tests.support.operator import fail

    timeout = fail(dlq_app, "charts.fetch", "tiles/1")
    other = fail(dlq_app, "charts.fetch", "tiles/2")
    mystery = fail(dlq_app, "reports.build", "mystery", "q")
    store = dlq_app.store
    recovery.requeue(
        store,
        timeout,
        actor="ana",
        reason=f"retry {LEAK}",
        policy=dlq_app.policy,
        payload_limit=dlq_app.settings.payload_limit_bytes,
    )
    recovery.abandon(store, other, actor="ana", reason=f"gone {LEAK}")
    [entry] = review.review_log(store).items
    assert entry.job_id == mystery
    review.mark_reviewed(store, entry.dead_letter_id, by="ana", note=f"seen {LEAK}")
    stored = every_table(store)
    assert "gone " in stored and "seen " in stored and "[CARD]" in stored
    for leftover in LEFTOVERS:
        assert leftover not in stored, leftover


def test_the_attempts_of_adopted_jobs_are_stored_without_secrets(
    store_url: str, tmp_path: Path
) -> None:
    app = app_in(store_url, tmp_path, spool_dir=str(tmp_path / "spool"))
    recorder = Recorder(app, "celery")
    origin = Origin("celery", "default", "shop.charge", "msg-1", {})
    now = time.time()
    live = Failed(
        "msg-1", origin, RuntimeError(f"charge failed: {LEAK}"), f"Traceback: {LEAK}", now, now
    )
    recorder.attempt_failed(live)
    recorder.gave_up(live, "retries exhausted")
    # `deadletter import`: a failure the host kept, read from its traceback text.
    kept = Held("msg-2", origin, [Run(f"Traceback: x\nRuntimeError: {LEAK}", now)], "kept")
    assert import_failures(recorder, [kept], dry_run=False).adopted == 1
    stored = every_table(app.store)
    assert "charge failed" in stored and "[CARD]" in stored
    for leftover in LEFTOVERS:
        assert leftover not in stored, leftover
    app.close()


# Where a job's own arguments are kept whole, for a requeue (docs/security.md).
PAYLOAD_COLUMNS = {"queue_jobs.payload", "job_payload_history.payload"}
# What leaves the system: no personal data either.
OUTBOX_TABLES = ("user_notifications.", "ops_alerts.")


def test_no_secret_canary_reaches_a_table_a_record_the_log_or_an_answer(
    store_url: str, tmp_path: Path
) -> None:
    from deadletter.web.server import create_server
    from tests.api.conftest import running
    from tests.cli.conftest import Cli
    from tests.support import canaries as c

    app = app_in(store_url, tmp_path, queues=LEAKY, serve={"rate_limit": "inf"})

    @app.task(queue="leaky", name="leaky.work")
    def work(kind: str, secrets: str, card: dict[str, str]) -> None:
        held = c.text_of("loc")  # a local: nothing captures a frame's locals
        try:
            raise ConnectionError(f"cause: {c.text_of('tb')}")
        except ConnectionError as exc:
            error = {
                "timeout": TimeoutError,
                "invalid": InvalidInput,
                "server": RuntimeError,
                "mystery": KeyError,
            }[kind]
            raise error(f"{kind} {c.text_of('msg')} {len(held)}") from exc

    payload = c.text_of("pay")
    job_ids = [
        app.enqueue(work.spec(kind, payload, {"number": payload}).options(labels={"user": "u-1"}))
        for kind in ("timeout", "invalid", "server", "mystery")
    ]
    app.worker().run(burst=True)
    assert all((j := app.store.get_job(i)) and j.status is JobState.FAILED for i in job_ids)

    found = {}
    for column, text in every_column(app.store).items():
        personal = not column.startswith(OUTBOX_TABLES)
        found[column] = c.leaks(
            text, personal_allowed=personal, payload_allowed=column in PAYLOAD_COLUMNS
        )
    found["forensics"] = c.leaks(c.forensic_records(tmp_path / "blobs"), personal_allowed=True)
    found["dlq log"] = c.leaks((tmp_path / "dlq.log").read_text(), personal_allowed=False)

    keys = {scope: tokens.create(app.store, scope, [scope], now=time.time(), actor="t")[1]
            for scope in ("read", "operate", "admin")}  # fmt: skip
    pages: dict[str, str] = {}
    with running(App(app.settings), build=create_server) as server:
        for scope, secret in keys.items():
            with server.client(secret) as client:
                answers = [client.get(path).text for path in _get_paths(job_ids[0])]
                pages[scope] = "\n".join(_dashboard_pages(server.url, secret, job_ids[0]))
                answers.append(pages[scope])
                if scope != "read":
                    answers.append(client.post("/api/bulk/dry-run", json={"all": True}).text)
                if scope == "admin":
                    export = {"reason": "audit", "include_payload": True}
                    answers.append(client.post("/api/export", json=export).text)
            admin = scope == "admin"
            found[f"api {scope}"] = c.leaks(
                "\n".join(answers), personal_allowed=admin, payload_allowed=admin
            )
    env = {
        **os.environ,
        "DEADLETTER_DATABASE_URL": store_url,
        "DEADLETTER_BLOB_URL": str(tmp_path / "blobs"),
    }
    cli = Cli(tmp_path, env)
    shown = [
        cli.ok("show", job_ids[0]),
        cli.ok("failures"),
        cli.ok("export", "--reason", "audit", "--include-payload"),
    ]
    # The CLI acts with the database's rights, as an admin does.
    found["cli"] = c.leaks("\n".join(shown), personal_allowed=True, payload_allowed=True)
    assert {where: leaked for where, leaked in found.items() if leaked} == {}
    # Where they may be, they are: the scan would find them.
    stored = every_column(app.store)
    assert c.leaks(stored["queue_jobs.payload"], personal_allowed=True) == [
        f"pay/{kind}" for kind in c.SECRET_KINDS
    ]
    assert len(c.leaks(stored["job_attempts.message"], personal_allowed=False)) == 3
    assert "msg/email" in c.leaks(pages["admin"], personal_allowed=False)
    assert "leaky.work" in stored["ops_alerts.body"] + stored["user_notifications.message"]
    app.close()


def _dashboard_pages(url: str, secret: str, job_id: str) -> list[str]:
    """Every dashboard page, as an operator logged in with `secret` sees it."""
    pages = ["/", "/failures", f"/failures/{job_id}", "/groups", "/queues", "/bulk"]
    pages += ["/recovery", "/review", "/audit", "/tokens"]
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as browser:
        assert browser.post("/login", data={"token": secret}).status_code == 303
        answers = [browser.get(page) for page in pages]
    # A page a scope may not open is refused, not shown: the scan reads what is shown.
    assert {a.status_code for a in answers} <= {200, 403}, [a.status_code for a in answers]
    return [a.text for a in answers if a.status_code == 200]


def _get_paths(job_id: str) -> list[str]:
    """Every GET route of the API, with a failed job's id where one is wanted."""
    from deadletter.api.openapi import document

    paths = [p for p, ops in document()["paths"].items() if "get" in ops]
    return [p.replace("{job_id}", job_id) for p in paths if "{" not in p.replace("{job_id}", "")]
