"""Archive and purge over every backend: old failures move to the blob store whole, once,
and nothing leaves the database that a verified blob does not hold."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.errors import BlobStoreError
from deadletter.forensics import open_blob_store
from deadletter.forensics.base import BlobStore
from deadletter.ops.archive import PREFIX, Removed, archivable, archive, purge, purgeable
from deadletter.store.rows import loads
from tests.conftest import MotoServer
from tests.contract.test_dlq_handler import enqueue, make_app, rows

AGE = 60.0
FAILURE_COLUMNS = [
    *("dead_letter_id", "job_id", "queue", "task", "error_class", "rule", "fingerprint"),
    *("error_type", "error_message", "http_status", "retry_count", "reason", "labels"),
    *("forensics_key", "created_at", "failed_at", "handled_at"),
]


def later() -> float:
    """A time at which every failure made so far is older than AGE."""
    return time.time() + 2 * AGE


def fail_jobs(app: App, faults: list[str]) -> list[str]:
    job_ids = [enqueue(app, fault, str(n), site_name=f"b-{n}") for n, fault in enumerate(faults)]
    app.worker().run(burst=True)
    return job_ids


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    """Five failures to archive, and one whose recovery is pending, which stays."""
    application = make_app(store_url, tmp_path)
    fail_jobs(application, ["server_error", "bad_request", "mystery", "invalid", "server_error"])
    enqueue(application, "timeout", "kept")
    application.worker().run(burst=True)
    yield application
    application.close()


def failures(app: App) -> dict[str, dict[str, Any]]:
    found = rows(app, f"SELECT {', '.join(FAILURE_COLUMNS)} FROM dlq_failures")
    as_dicts = [dict(zip(FAILURE_COLUMNS, row, strict=True)) for row in found]
    return {f["dead_letter_id"]: {**f, "labels": loads(f["labels"])} for f in as_dicts}


def archived(blobs: BlobStore) -> list[dict[str, Any]]:
    """Every record of every archive blob, in key order."""
    return [
        json.loads(line)
        for key in blobs.list(PREFIX)
        for line in gzip.decompress(blobs.get(key)).decode().splitlines()
    ]


def archived_once(blobs: BlobStore) -> dict[str, dict[str, Any]]:
    """The archived failures by id, after checking that none is archived twice."""
    records = archived(blobs)
    counts = Counter(r["failure"]["dead_letter_id"] for r in records)
    assert all(n == 1 for n in counts.values()), counts
    return {r["failure"]["dead_letter_id"]: r for r in records}


def counts(app: App) -> tuple[int, ...]:
    tables = ("dlq_failures", "queue_jobs", "job_attempts", "dlq_review_log", "dlq_recovery_queue")
    return tuple(rows(app, f"SELECT count(*) FROM {table}")[0][0] for table in tables)


def move_aside(folder: Path) -> None:
    """The blob folder gone, a file in its place: an unmounted or broken volume."""
    folder.rename(folder.with_name("aside"))
    folder.write_text("not a folder")


def move_back(folder: Path) -> None:
    folder.unlink()
    folder.with_name("aside").rename(folder)


def check_archive_then_purge(app: App, blobs: BlobStore) -> None:
    before = failures(app)
    [pending] = [i for i, f in before.items() if f["error_class"] == "RECOVERABLE"]
    now = later()
    assert archivable(app.store, older_than_seconds=AGE, now=now) == 5
    done = archive(app.store, blobs, older_than_seconds=AGE, now=now, chunk_size=2)
    assert (done.failures, len(done.blobs), done.removed) == (5, 3, Removed(5, 10))
    assert purge(app.store, older_than_seconds=AGE, now=now) == Removed()

    records = archived_once(blobs)
    assert {i: r["failure"] for i, r in records.items()} == {
        i: f for i, f in before.items() if i != pending
    }
    for record in records.values():
        failure, job, letter = record["failure"], record["job"], record["letter"]
        assert job["id"] == failure["job_id"] and job["status"] == "failed"
        assert [a["number"] for a in job["history"]] == list(range(1, job["attempts"] + 1))
        assert letter["id"] == failure["dead_letter_id"] and letter["status"] == "succeeded"
    assert sum(r["review"] is not None for r in records.values()) == 1

    # Left: the pending failure, its job, letter and recovery row; nothing else of theirs.
    assert list(failures(app)) == [pending]
    assert rows(app, "SELECT count(*) FROM queue_jobs WHERE status = 'failed'") == [(1,)]
    job_ids = {r["job"]["id"] for r in records.values()} | set(records)
    left = {job_id for (job_id,) in rows(app, "SELECT id FROM queue_jobs")}
    attempts_of = {job_id for (job_id,) in rows(app, "SELECT job_id FROM job_attempts")}
    assert not (left | attempts_of) & job_ids
    assert rows(app, "SELECT status FROM dlq_recovery_queue") == [("pending",)]
    assert app.store.dlq_stats(now=time.time()).total_failed == 1


def test_archive_then_purge_moves_every_old_failure_to_the_blob_store(app: App) -> None:
    check_archive_then_purge(app, app.dlq.blobs)


def test_archive_to_s3(
    sqlite_url: str, tmp_path: Path, moto_server: MotoServer, aws_credentials: None
) -> None:
    url = f"s3://dl-archive-{uuid.uuid4().hex[:12]}/deadletter"
    blobs = open_blob_store(url, endpoint_url=moto_server.endpoint_url)
    blobs.ensure()
    application = make_app(sqlite_url, tmp_path)
    fail_jobs(application, ["server_error", "bad_request", "mystery", "invalid", "server_error"])
    enqueue(application, "timeout", "kept")
    application.worker().run(burst=True)
    check_archive_then_purge(application, blobs)
    application.close()


def test_failures_younger_than_the_cutoff_stay(app: App) -> None:
    before = counts(app)
    done = archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=time.time())
    assert (done.failures, done.blobs) == (0, [])
    assert counts(app) == before


def test_purge_without_archive_removes_nothing_unless_asked(app: App) -> None:
    before = counts(app)
    now = later()
    assert purgeable(app.store, older_than_seconds=AGE, now=now) == 0
    assert purge(app.store, older_than_seconds=AGE, now=now) == Removed()
    assert counts(app) == before
    young = purge(app.store, older_than_seconds=AGE, now=time.time(), archived_only=False)
    assert young == Removed() and counts(app) == before

    seen: list[tuple[int, int]] = []
    removed = purge(
        app.store,
        older_than_seconds=AGE,
        now=now,
        archived_only=False,
        chunk_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert removed == Removed(failures=5, jobs=10)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert counts(app) == (1, 2, 4, 0, 1)  # the pending failure, its job (4 attempts), letter
    assert list(app.dlq.blobs.list(PREFIX)) == []


def test_a_blob_store_failing_mid_archive_removes_only_what_it_holds(
    app: App, tmp_path: Path
) -> None:
    folder, now = tmp_path / "blobs", later()
    before, everything = counts(app), failures(app)
    move_aside(folder)
    with pytest.raises(BlobStoreError):
        archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=now, chunk_size=2)
    assert counts(app) == before
    move_back(folder)

    # Back, then failing again after the first blob was written and verified.
    with pytest.raises(BlobStoreError):
        archive(
            app.store,
            app.dlq.blobs,
            older_than_seconds=AGE,
            now=now,
            chunk_size=2,
            progress=lambda done, total: move_aside(folder),
        )
    move_back(folder)
    records = archived_once(app.dlq.blobs)
    assert len(records) == 2
    assert set(failures(app)) == set(everything) - set(records)

    done = archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=now, chunk_size=2)
    assert done.failures == 3
    assert len(archived_once(app.dlq.blobs)) == 5 and len(failures(app)) == 1


def crash(done: int, total: int) -> None:
    raise KeyboardInterrupt


def crash_after_writing(app: App) -> None:
    """Archive every failure, and stop after verifying the blob, before removing."""
    before = counts(app)
    with pytest.raises(KeyboardInterrupt):
        archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=later(), progress=crash)
    assert counts(app) == before and len(archived_once(app.dlq.blobs)) == 5


def test_rerunning_after_a_crash_removes_what_was_written_once(app: App) -> None:
    crash_after_writing(app)
    done = archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=later())
    assert (done.failures, done.blobs, done.removed) == (0, [], Removed(5, 10))
    assert len(archived_once(app.dlq.blobs)) == 5 and len(failures(app)) == 1


def test_after_a_crash_purge_removes_the_archived_and_archive_the_rest(app: App) -> None:
    crash_after_writing(app)
    # New failures since: a run that wrote its batch afresh would archive the old ones twice.
    fail_jobs(app, ["server_error", "mystery"])
    now = later()
    assert purgeable(app.store, older_than_seconds=AGE, now=now) == 5
    assert archivable(app.store, older_than_seconds=AGE, now=now) == 2
    assert purge(app.store, older_than_seconds=AGE, now=now) == Removed(5, 10)
    assert len(failures(app)) == 3
    done = archive(app.store, app.dlq.blobs, older_than_seconds=AGE, now=now)
    assert (done.failures, done.removed.failures) == (2, 2)
    assert len(archived_once(app.dlq.blobs)) == 7 and len(failures(app)) == 1
