"""No secret reaches the database raw: an attempt's error is redacted where it is
recorded, and what operators type (reasons, notes) is redacted on write."""

from __future__ import annotations

import time
from pathlib import Path

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.integrations.core import Failed, Recorder
from deadletter.integrations.imports import Held, Run, import_failures
from deadletter.model import JobState, Origin
from deadletter.ops import recovery, review
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


def every_table(store: Store) -> str:
    """Every row of every table, as text."""
    with store.snapshot() as execute:
        if store.url.startswith("sqlite"):
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        names = [row[0] for row in execute(query, ()).fetchall()]
        rows = [execute(f"SELECT * FROM {name}", ()).fetchall() for name in names]
        return "\n".join(repr([tuple(row) for row in table]) for table in rows)


def test_an_attempts_error_is_stored_without_secrets(store_url: str, tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {
            "database_url": store_url,
            "blob_url": str(tmp_path / "blobs"),
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "queues": {"leaky": {"max_retries": 1, "backoff_base": 0.0}},
        }
    )
    app = App(settings)

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
    settings = settings_from_mapping(
        {
            "database_url": store_url,
            "blob_url": str(tmp_path / "blobs"),
            "spool_dir": str(tmp_path / "spool"),
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
        }
    )
    app = App(settings)
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
