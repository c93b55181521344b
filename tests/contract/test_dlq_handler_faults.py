"""The DLQ handler's fault paths over every backend: a breaker found open, a letter it
cannot read, and a database it cannot write the batch or the parked alert to."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.errors import InvalidArgument, NotTaken, Retry, StoreUnavailable
from deadletter.model import JobState, LeasedJob, NewJob
from deadletter.store import open_store
from deadletter.store.base import DEAD_LETTER_TASK, Store
from deadletter.store.postgres import PostgresStore
from deadletter.tasks import JobSpec
from tests.contract.test_dlq_handler import (
    DLQ,
    Q,
    block_blob_folder,
    dead_letters,
    make_app,
    rows,
)

CLOSED_PORT = "postgresql://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    """`make_app`'s app, its events logged to tmp_path / "dlq.log"."""
    application = make_app(store_url, tmp_path)
    yield application
    application.close()


def lease_letters(app: App) -> list[LeasedJob]:
    return app.store.lease([DLQ], limit=10, worker="t", now=time.time(), lease_seconds=30)


def logged(tmp_path: Path) -> list[dict[str, Any]]:
    """The DLQ event log of `make_app`'s app."""
    return [json.loads(line) for line in (tmp_path / "dlq.log").read_text().splitlines()]


def failure_rows(app: App) -> list[str]:
    return sorted(letter for (letter,) in rows(app, "SELECT dead_letter_id FROM dlq_failures"))


@contextmanager
def unreachable(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store of `store_url`'s backend whose database cannot be reached: a server on a
    closed port, or a SQLite database whose folder was replaced by a file."""
    store: Store
    if store_url.startswith("sqlite"):
        folder = tmp_path / "unreachable"
        store = open_store(f"sqlite:///{folder / 'gone.db'}")
        shutil.rmtree(folder)
        folder.write_text("a file where the database's folder was")
    else:
        store = PostgresStore(CLOSED_PORT, timeout=1)
    try:
        yield store
    finally:
        store.close()


def test_a_batch_taken_while_the_breaker_is_open_is_given_back_uncharged(
    app: App, tmp_path: Path
) -> None:
    """A batch leased before another batch tripped the breaker: not handled even though
    the blob store is back, until a probe closes the breaker."""
    blocker = block_blob_folder(app, tmp_path)
    dead_letters(app, 3)
    first, *rest = lease_letters(app)
    assert isinstance(app.dlq.handler([first])[first.id], NotTaken)  # trips the breaker
    blocker.unlink()
    app.dlq.blobs.ensure()

    given_back = app.dlq.handler(rest)
    assert set(given_back) == {letter.id for letter in rest}
    assert all(isinstance(exc, NotTaken) for exc in given_back.values())
    assert list((tmp_path / "blobs").rglob("*.json.gz")) == []
    assert failure_rows(app) == []

    time.sleep(0.6)  # the breaker's first probe is due after 0.5 s
    app.dlq.handler.probe()
    assert app.dlq.handler(rest) == {}
    assert failure_rows(app) == sorted(letter.id for letter in rest)


def test_the_dead_letter_task_cannot_be_enqueued_by_name(app: App) -> None:
    with pytest.raises(InvalidArgument, match="reserved for the dead letters"):
        app.enqueue(JobSpec(DEAD_LETTER_TASK, DLQ, args=(), kwargs={}))
    assert app.store.list_jobs(queue=DLQ) == []


def test_a_letter_that_cannot_be_read_fails_alone(app: App, tmp_path: Path) -> None:
    """A letter without a `job_id` (broken, or written by another version) cannot have
    its record prepared; the rest of its batch is handled."""
    now = time.time()
    [forged] = app.store.enqueue(
        [NewJob("forged", DLQ, DEAD_LETTER_TASK, {}, 3, DLQ, run_at=now, created_at=now)]
    )
    dead_letters(app, 2)
    letters = lease_letters(app)
    assert len(letters) == 3

    failed = app.dlq.handler(letters)
    assert list(failed) == [forged]
    assert isinstance(failed[forged], Retry) and isinstance(failed[forged].__cause__, KeyError)
    assert failure_rows(app) == sorted(letter.id for letter in letters if letter.id != forged)
    [step] = [e for e in logged(tmp_path) if e["event"] == "dlq.step_failed"]
    assert (step["dead_letter_id"], step["step"]) == (forged, "forensics")


def test_a_batch_the_database_cannot_record_is_retried_whole(
    app: App, store_url: str, tmp_path: Path
) -> None:
    dead_letters(app, 3)
    letters = lease_letters(app)
    ids = sorted(letter.id for letter in letters)
    with unreachable(store_url, tmp_path) as gone:
        failed = replace(app.dlq.handler, store=gone)(letters)
    assert sorted(failed) == ids
    assert all(isinstance(exc.__cause__, StoreUnavailable) for exc in failed.values())
    steps = [e for e in logged(tmp_path) if e["event"] == "dlq.step_failed"]
    assert sorted((e["dead_letter_id"], e["step"]) for e in steps) == [(i, "record") for i in ids]
    assert failure_rows(app) == []
    # None is lost: their retry, with the database back, records each of them.
    assert app.dlq.handler(letters) == {}
    assert failure_rows(app) == ids


def test_a_parked_letter_whose_alert_cannot_be_written_stays_parked(
    app: App, store_url: str, tmp_path: Path
) -> None:
    [job_id] = dead_letters(app, 1)
    with unreachable(store_url, tmp_path) as gone:
        app.dlq.handler.store = gone  # the handler's database is down; the worker's is not
        app.worker(queues=[Q], dlq_only=True).run(burst=True)
    [letter] = app.store.list_jobs(queue=DLQ)
    assert letter.status is JobState.DEAD_LETTERED and letter.attempts == 3
    [parked] = app.store.list_jobs(queue=f"{DLQ}-parked")
    assert parked.payload["job_id"] == letter.id
    assert rows(app, "SELECT kind FROM ops_alerts") == []
    events = [(e["event"], e.get("kind")) for e in logged(tmp_path)]
    assert events.count(("dlq.parked", None)) == 1
    assert ("dlq.alert_failed", "parked") in events
    job = app.store.get_job(job_id)
    assert job is not None and job.status is JobState.DEAD_LETTERED
