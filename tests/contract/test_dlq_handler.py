"""The DLQ handler over every backend: record, classify, group, route; exactly once."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import InvalidInput
from deadletter.forensics import document as forensic
from deadletter.model import Attempt, ErrorClass, JobState
from deadletter.store.base import Retrying
from deadletter.store.outbox import Outbox
from deadletter.worker.loop import Worker
from tests.contract.test_crash import wait_for
from tests.support.ghost import began_and_vanished, lose_workers

THRESHOLDS = ("last_24h", "avg_retries", "pending_recovery")
Q = "chart-processing"
DLQ = "chart-processing-dlq"


class HTTPError(Exception):
    def __init__(self, status_code: int, message: str = "") -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code


def make_app(url: str, tmp_path: Path, **dlq: Any) -> App:
    settings = settings_from_mapping(
        {
            "database_url": url,
            "blob_url": str(tmp_path / "blobs"),
            "worker": {"poll_interval": 0.02},
            "dlq": {"log_file": str(tmp_path / "dlq.log"), **dlq},
            "queues": {Q: {"backoff_base": 0.0}, DLQ: {"backoff_base": 0.0, "max_retries": 2}},
            # Off unless a test turns them on: a worker checks them as it starts, and a
            # threshold alert would stand among the alerts these tests count.
            "thresholds": dict.fromkeys(THRESHOLDS, math.inf),
        }
    )
    app = App(settings)

    @app.task(queue=Q, name="charts.render")
    def render(fault: str, detail: str = "") -> None:
        if fault == "timeout":
            raise TimeoutError(f"Timeout fetching data for {detail} after 30s")
        if fault == "bad_request":
            raise HTTPError(400, f"chart has no series; contact {detail}")
        if fault == "server_error":
            raise HTTPError(500, f"Internal Server Error at node {detail}")
        if fault == "invalid":
            raise InvalidInput("date range end before start")
        if fault == "mystery":
            raise KeyError(f"series_{detail}")

    return app


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    application = make_app(store_url, tmp_path)
    yield application
    application.close()


def enqueue(app: App, fault: str, detail: str = "", **labels: str) -> str:
    spec = app.tasks["charts.render"].spec(fault, detail).options(labels=labels)
    return app.enqueue(spec)


def rows(app: App, sql: str) -> list[tuple[Any, ...]]:
    """Read a table through the store's own connection (SQLite) or a new one (PostgreSQL)."""
    url = app.store.url
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [tuple(r) for r in conn.execute(sql)]
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def test_each_class_is_recorded_and_routed(app: App) -> None:
    timeout = enqueue(app, "timeout", "building-a", site_name="building-a")
    bad = enqueue(app, "bad_request", "ops@example.com", user="alice@example.com")
    nobody = enqueue(app, "invalid")
    server = enqueue(app, "server_error", "7")
    mystery = enqueue(app, "mystery", "9")
    app.worker().run(burst=True)

    for job_id in (timeout, bad, nobody, server, mystery):
        job = app.store.get_job(job_id)
        assert job is not None and job.status is JobState.FAILED
    classes = dict(rows(app, "SELECT job_id, error_class FROM dlq_failures"))
    assert classes == {
        timeout: "RECOVERABLE",
        bad: "USER_ERROR",
        nobody: "USER_ERROR",
        server: "SYSTEM_ERROR",
        mystery: "UNKNOWN",
    }
    assert rows(app, "SELECT job_id, status FROM dlq_recovery_queue") == [(timeout, "pending")]
    notes = dict(rows(app, "SELECT job_id, status FROM user_notifications"))
    assert notes == {bad: "pending", nobody: "no_user"}
    [(user, message)] = rows(
        app, "SELECT user_id, message FROM user_notifications WHERE user_id IS NOT NULL"
    )
    assert user == "alice@example.com"
    assert "ops@example.com" not in message and "could not be completed" in message
    assert rows(app, "SELECT job_id FROM dlq_review_log") == [(mystery,)]
    kinds = sorted(k for (k,) in rows(app, "SELECT kind FROM ops_alerts"))
    # every fingerprint is new, so each failure raises a "new kind of failure" alert
    assert kinds == ["new_failure"] * 5


def test_forensic_record_is_complete_small_and_keyed_by_day(app: App) -> None:
    job_id = enqueue(app, "timeout", "building-a", site_name="building-a")
    app.worker().run(burst=True)
    [(key,)] = rows(app, "SELECT forensics_key FROM dlq_failures")
    assert key.startswith(f"failures/{Q}/") and key.endswith(".json.gz")
    data = app.dlq.blobs.get(key)
    doc = forensic.decode(data)
    assert doc["job"]["job_id"] == job_id
    assert doc["job"]["labels"] == {"site_name": "building-a"}
    assert doc["classification"]["class"] == "RECOVERABLE"
    assert [a["number"] for a in doc["attempts"]] == [1, 2, 3, 4]
    assert "traceback" in doc["attempts"][0]
    assert all(a.get("traceback_as_attempt") == 1 for a in doc["attempts"][1:])
    assert len(data) < 1500


def test_same_cause_shares_one_group_and_one_alert(app: App) -> None:
    for node in range(5):
        enqueue(app, "server_error", str(1000 + node))
    app.worker().run(burst=True)
    [(count,)] = rows(app, "SELECT count FROM dlq_error_groups")
    assert count == 5
    [(kind, occurrences)] = rows(app, "SELECT kind, occurrences FROM ops_alerts")
    assert (kind, occurrences) == ("new_failure", 5)


def test_a_letter_delivered_twice_is_recorded_once(app: App) -> None:
    enqueue(app, "server_error", "1")
    enqueue(app, "bad_request", "x", user="bob")
    app.worker(dlq=False).run(burst=True)
    now = time.time()
    letters = app.store.lease([DLQ], limit=10, worker="t", now=now, lease_seconds=30)
    assert len(letters) == 2
    assert app.dlq.handler(letters) == {}
    assert app.dlq.handler(letters) == {}
    assert len(rows(app, "SELECT * FROM dlq_failures")) == 2
    assert len(rows(app, "SELECT * FROM user_notifications")) == 1
    assert len(rows(app, "SELECT * FROM ops_alerts")) == 2
    [(count,)] = rows(app, "SELECT sum(count) FROM dlq_error_groups")
    assert count == 2


def block_blob_folder(app: App, tmp_path: Path) -> Path:
    """Put a file where the blob folder was, after the app set the folder up."""
    app.dlq.blobs.ensure()
    folder = tmp_path / "blobs"
    folder.rmdir()
    folder.write_text("a file where the folder should be")
    return folder


def dead_letters(app: App, count: int) -> list[str]:
    """`count` jobs failed onto DLQ, their letters waiting there; the jobs' ids."""
    ids = [enqueue(app, "server_error", str(n)) for n in range(count)]
    app.worker(dlq=False).run(burst=True)
    return ids


def outage_alerts(app: App) -> list[str]:
    sql = "SELECT title FROM ops_alerts WHERE kind = 'outage' ORDER BY created_at"
    return [title for (title,) in rows(app, sql)]


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """`worker` on a thread of its own (periodic delivery and probes included), stopped
    on exit."""
    thread = threading.Thread(target=worker.run, name="test-worker")
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)


def test_unwritable_forensics_are_an_outage_letters_wait_uncharged(
    store_url: str, tmp_path: Path
) -> None:
    app = make_app(store_url, tmp_path)
    blocker = block_blob_folder(app, tmp_path)
    ids = dead_letters(app, 5)
    with running(app.worker(queues=[Q], dlq_only=True)) as worker:
        assert wait_for(lambda: len(outage_alerts(app)) == 1, 10)
        time.sleep(1.5)  # probes fail meanwhile; nothing is taken, charged or parked
        assert not app.dlq.handler.takes_letters()
        letters = app.store.list_jobs(queue=DLQ)
        assert [letter.attempts for letter in letters] == [0] * 5
        assert {letter.status for letter in letters} == {JobState.QUEUED}
        blocker.unlink()
        app.dlq.blobs.ensure()
        assert wait_for(lambda: all(job_state(app, i) is JobState.FAILED for i in ids), 10)
        assert worker.stats.letters_parked == worker.stats.letters_retried == 0
    assert [letter.attempts for letter in app.store.list_jobs(queue=DLQ)] == [1] * 5
    assert app.store.list_jobs(queue=f"{DLQ}-parked") == []
    assert outage_alerts(app) == [
        "Dead letters wait: the blob store is down",
        "The blob store is back",
    ]
    events = [json.loads(line)["event"] for line in (tmp_path / "dlq.log").read_text().splitlines()]
    assert events.count("dlq.outage_began") == events.count("dlq.outage_ended") == 1
    assert "dlq.step_failed" not in events and "dlq.parked" not in events
    app.close()


def job_state(app: App, job_id: str) -> JobState | None:
    job = app.store.get_job(job_id)
    return job.status if job else None


def test_a_letter_whose_own_forensics_cannot_be_written_is_parked_with_an_alert(
    app: App, tmp_path: Path
) -> None:
    [job_id] = dead_letters(app, 1)
    [letter] = app.store.list_jobs(queue=DLQ)
    failed_at = float(letter.payload["attempts"][-1]["ended_at"])
    # A folder where this letter's record goes: its key alone cannot be written.
    (tmp_path / "blobs" / forensic.key(Q, failed_at, letter.id)).mkdir(parents=True)
    app.worker(queues=[Q], dlq_only=True).run(burst=True)
    [letter] = app.store.list_jobs(queue=DLQ)
    assert letter.status is JobState.DEAD_LETTERED and letter.attempts == 3
    [parked] = app.store.list_jobs(queue=f"{DLQ}-parked")
    assert parked.payload["job_id"] == letter.id
    assert rows(app, "SELECT kind FROM ops_alerts") == [("parked",)]
    assert app.dlq.handler.takes_letters()
    assert job_state(app, job_id) is JobState.DEAD_LETTERED


def test_secrets_never_reach_forensics_and_pii_never_leaves(app: App, tmp_path: Path) -> None:
    spec = app.tasks["charts.render"].spec("server_error", "token=sk_live_abcdefghijklmnop1234")
    app.enqueue(spec.options(labels={"user": "carol@example.com"}))
    app.worker().run(burst=True)
    [(key,)] = rows(app, "SELECT forensics_key FROM dlq_failures")
    stored = json.dumps(forensic.decode(app.dlq.blobs.get(key)))
    assert "sk_live_abcdefghijklmnop1234" not in stored
    [(body,)] = rows(app, "SELECT body FROM ops_alerts")
    assert "sk_live_abcdefghijklmnop1234" not in body
    log_text = (tmp_path / "dlq.log").read_text()
    assert "carol@example.com" not in log_text and "sk_live_abcdefghijklmnop1234" not in log_text


def test_a_poison_job_is_classified_by_its_own_error_not_by_its_lost_workers(app: App) -> None:
    job_id = enqueue(app, "bad_request", "a")
    # Its first attempt fails with its own error; the next three kill their workers.
    first = began_and_vanished(app.store, Q, worker="w1", lease_seconds=30)
    own = Attempt(
        job_id,
        1,
        time.time(),
        time.time(),
        "w1",
        "tests.HTTPError",
        "chart has no series",
        http_status=400,
        error_class=ErrorClass.USER_ERROR,
        rule="http-4xx",
    )
    app.store.finish([Retrying(first.lease, own, run_at=time.time())], now=time.time())
    worker = app.worker()
    lose_workers(app.store, Q, worker, 3)
    worker.run(burst=True)

    [(reason, error_class, error_type, retries)] = rows(
        app, "SELECT reason, error_class, error_type, retry_count FROM dlq_failures"
    )
    assert reason.startswith("poison:") and retries == 3
    assert (error_class, error_type) == ("USER_ERROR", "tests.HTTPError")
    [(kind,)] = rows(app, "SELECT kind FROM ops_alerts")
    assert kind == "poison"


def test_a_job_that_keeps_killing_its_worker_is_quarantined_with_an_alert(app: App) -> None:
    job_id = enqueue(app, "timeout", "a")
    worker = app.worker()
    lose_workers(app.store, Q, worker, 4)
    worker.run(burst=True)
    [(reason, error_class)] = rows(app, "SELECT reason, error_class FROM dlq_failures")
    assert reason.startswith("poison:") and error_class == "RECOVERABLE"
    [(kind, title, body)] = rows(app, "SELECT kind, title, body FROM ops_alerts")
    assert kind == "poison" and "Poison job" in title and job_id in body


def test_occurrences_after_an_alert_was_sent_go_out_as_one_summary(app: App) -> None:
    enqueue(app, "server_error", "1")
    app.worker().run(burst=True)
    # The worker's own delivery loop may have tried it already (no target set) and put
    # its next try off: claim as if that time had come.
    soon = time.time() + 3600
    [alert] = app.store.claim_deliveries(Outbox.ALERTS, now=soon, limit=5, claim_seconds=60)
    app.store.settle_delivery(alert, now=time.time(), error=None, retry_at=0.0)
    for node in range(2, 5):
        enqueue(app, "server_error", str(node))
    app.worker().run(burst=True)
    assert app.store.summarise_alerts(now=time.time(), window=900) == []  # window not over

    later = time.time() + 901
    [summary_id] = app.store.summarise_alerts(now=later, window=900)
    assert app.store.summarise_alerts(now=later, window=900) == []
    [(kind, body)] = rows(app, f"SELECT kind, body FROM ops_alerts WHERE id = '{summary_id}'")
    assert kind == "summary" and body.startswith("3 more occurrence(s)")


def test_a_worker_handling_dead_letters_alerts_when_a_threshold_fires(
    store_url: str, tmp_path: Path
) -> None:
    app = make_app(store_url, tmp_path)
    thresholds = {"last_24h": 1.0, "interval_seconds": 0.05}
    app.settings = dataclasses.replace(
        app.settings, thresholds=dataclasses.replace(app.settings.thresholds, **thresholds)
    )
    for node in range(2):
        enqueue(app, "mystery", str(node))
    worker = app.worker()
    running = threading.Thread(target=worker.run)
    running.start()
    try:
        deadline = time.monotonic() + 20
        while not rows(app, "SELECT id FROM ops_alerts WHERE kind = 'threshold'"):
            assert time.monotonic() < deadline, "no threshold alert within 20 s"
            time.sleep(0.05)
    finally:
        worker.stop()
        running.join()
    titles = [t for (t,) in rows(app, "SELECT title FROM ops_alerts WHERE kind = 'threshold'")]
    assert "Alert: last_24h is 2 (above 1)" in titles
    app.close()
