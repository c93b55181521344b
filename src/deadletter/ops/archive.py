"""Archive and purge: old failures move to the blob store, then leave the database.

`archive` writes failures older than a cutoff as gzipped JSON lines, a few thousand
per blob, keyed `archive/failures/<YYYY-MM-DD>/<first id>-<last id>.jsonl.gz` (the day
of the first failure, UTC). Each line is one failure (a row of dlq_failures) with the
rest of it: its job and the job's attempts, its dead letter (the DLQ job that carried
it), each with its attempts under `history`, the job's recovery row and the failure's
review entry.

What leaves the database with an archived failure: its row, its review entry and its
dead letter; and its job, with the job's attempts and recovery row, once the job has
failed for good: status `failed` and no other failure of it left in the database. A
job that was requeued keeps its row. Alerts, user notifications (delivery history) and
error groups (counts over all time) stay. A failure whose job waits in the recovery
queue (`pending`) is neither archived nor purged: an operator's decision is due, and a
requeue needs the job.

Crash safety, in three steps per blob:
1. claim: one transaction records which failures the blob will hold
   (`archived_failures`), so that a re-run resumes the same batch under the same key
   and no failure is ever written to two blobs;
2. put the blob, read it back, compare; then mark the batch archived;
3. remove archived failures past the cutoff from the database.
A crash or a failing blob store before step 2 completes leaves the batch claimed and
nothing removed: the next run writes it again, whole. A crash before step 3 leaves
archived failures in the database: the next `archive`, or `purge`, removes them.

`purge` removes failures past retention from the database, writing nothing: by default
only those archived, which is what step 3 runs; `archived_only=False` removes the others
too, the explicit way to drop failures without keeping them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from deadletter.errors import BlobStoreError
from deadletter.forensics.base import BlobStore
from deadletter.model import JSON
from deadletter.store.base import DEAD_LETTER_TASK, Store
from deadletter.store.failures import DbCursor, Execute
from deadletter.store.rows import loads

# Failures per blob: a blob of a few hundred kilobytes, and statements whose parameters
# (two per failure at most) stay far below both databases' limits.
CHUNK = 2000
PREFIX = "archive/failures"
JSON_COLUMNS = frozenset({"payload", "labels"})

# (failures done, failures in all): called as the run goes.
Progress = Callable[[int, int], None]

# Failures past the cutoff whose job is not waiting for an operator's decision.
PAST = """
FROM dlq_failures f
WHERE f.failed_at < ?
    AND NOT EXISTS (SELECT 1 FROM dlq_recovery_queue r
                    WHERE r.job_id = f.job_id AND r.status = 'pending')
"""
UNCLAIMED = """
    AND NOT EXISTS (SELECT 1 FROM archived_failures a WHERE a.dead_letter_id = f.dead_letter_id)
"""
ARCHIVED = """
    AND EXISTS (SELECT 1 FROM archived_failures a
                WHERE a.dead_letter_id = f.dead_letter_id AND a.archived_at IS NOT NULL)
"""
PAGE = "ORDER BY f.failed_at, f.dead_letter_id LIMIT ?"

CLAIM = """
INSERT INTO archived_failures (dead_letter_id, claimed_at) VALUES {rows}
ON CONFLICT (dead_letter_id) DO NOTHING
RETURNING dead_letter_id
"""
NAME_BATCH = "UPDATE archived_failures SET blob_key = ? WHERE dead_letter_id IN ({ids})"
UNFINISHED = "SELECT DISTINCT blob_key FROM archived_failures WHERE archived_at IS NULL"
UNFINISHED_COUNT = "SELECT count(*) FROM archived_failures WHERE archived_at IS NULL"
MARK_ARCHIVED = """
UPDATE archived_failures SET archived_at = ? WHERE blob_key = ? AND archived_at IS NULL
"""

BATCH_FAILURES = """
SELECT f.* FROM dlq_failures f JOIN archived_failures a ON a.dead_letter_id = f.dead_letter_id
WHERE a.blob_key = ?
ORDER BY f.failed_at, f.dead_letter_id
"""
JOBS = "SELECT * FROM queue_jobs WHERE id IN ({ids})"
ATTEMPTS = "SELECT * FROM job_attempts WHERE job_id IN ({ids}) ORDER BY seq"
RECOVERY = "SELECT * FROM dlq_recovery_queue WHERE job_id IN ({ids})"
REVIEWS = "SELECT * FROM dlq_review_log WHERE dead_letter_id IN ({ids})"

DELETE_FAILURES = "DELETE FROM dlq_failures WHERE dead_letter_id IN ({ids})"
DELETE_REVIEWS = "DELETE FROM dlq_review_log WHERE dead_letter_id IN ({ids})"
# A claim on a failure removed unarchived is void: no batch may hold it any more.
VOID_CLAIMS = """
DELETE FROM archived_failures WHERE dead_letter_id IN ({ids}) AND archived_at IS NULL
"""
DELETE_DONE_JOBS = """
DELETE FROM queue_jobs
WHERE id IN ({ids}) AND status = 'failed'
    AND NOT EXISTS (SELECT 1 FROM dlq_failures f WHERE f.job_id = queue_jobs.id)
    AND NOT EXISTS (SELECT 1 FROM dlq_recovery_queue r
                    WHERE r.job_id = queue_jobs.id AND r.status = 'pending')
RETURNING id
"""
DELETE_LETTERS = """
DELETE FROM queue_jobs WHERE id IN ({ids}) AND task = ? AND status = 'succeeded'
RETURNING id
"""
DELETE_ATTEMPTS = "DELETE FROM job_attempts WHERE job_id IN ({ids})"
DELETE_RECOVERY = "DELETE FROM dlq_recovery_queue WHERE job_id IN ({ids})"


@dataclass
class Removed:
    """What left the database: failures, and jobs (failed jobs and dead letters)."""

    failures: int = 0
    jobs: int = 0


@dataclass
class Archived:
    blobs: list[str] = field(default_factory=list)
    failures: int = 0
    removed: Removed = field(default_factory=Removed)


def archive(
    store: Store,
    blobs: BlobStore,
    *,
    older_than_seconds: float,
    now: float,
    chunk_size: int = CHUNK,
    progress: Progress | None = None,
) -> Archived:
    """Move failures older than `older_than_seconds` to the blob store; safe to re-run,
    and to run after a run that crashed or whose blob store failed."""
    cutoff = now - older_than_seconds
    with store.snapshot() as execute:
        total = _count(execute, UNFINISHED_COUNT, ()) + _count_past(execute, UNCLAIMED, cutoff)
    archived = Archived()
    # First what a crashed run verified but did not remove, then batch by batch.
    _remove(store, ARCHIVED, cutoff, chunk_size, archived.removed)
    for key in _batches(store, cutoff, chunk_size, now):
        archived.failures += _write(store, blobs, key)
        with store.transaction() as execute:
            execute(MARK_ARCHIVED, (now, key))
        archived.blobs.append(key)
        if progress is not None:
            progress(archived.failures, total)
        _remove(store, ARCHIVED, cutoff, chunk_size, archived.removed)
    return archived


def purge(
    store: Store,
    *,
    older_than_seconds: float,
    now: float,
    archived_only: bool = True,
    chunk_size: int = CHUNK,
    progress: Progress | None = None,
) -> Removed:
    """Remove failures older than `older_than_seconds` from the database: only archived
    ones, unless `archived_only` is False."""
    condition = ARCHIVED if archived_only else ""
    cutoff = now - older_than_seconds
    with store.snapshot() as execute:
        total = _count_past(execute, condition, cutoff)
    removed = Removed()
    _remove(store, condition, cutoff, chunk_size, removed, lambda: _tell(progress, removed, total))
    return removed


def archivable(store: Store, *, older_than_seconds: float, now: float) -> int:
    """How many failures `archive` would take now (a dry run)."""
    with store.snapshot() as execute:
        return _count_past(execute, UNCLAIMED, now - older_than_seconds)


def purgeable(
    store: Store, *, older_than_seconds: float, now: float, archived_only: bool = True
) -> int:
    """How many failures `purge` would remove now (a dry run)."""
    with store.snapshot() as execute:
        return _count_past(execute, ARCHIVED if archived_only else "", now - older_than_seconds)


# -- claiming and writing batches ---------------------------------------------------


def _batches(store: Store, cutoff: float, chunk_size: int, now: float) -> Iterator[str]:
    """Keys of the batches to write: those an earlier run left unfinished, then new ones."""
    with store.snapshot() as execute:
        unfinished = [row[0] for row in execute(UNFINISHED, ()).fetchall()]
    yield from unfinished
    select = f"SELECT f.dead_letter_id, f.failed_at {PAST} {UNCLAIMED} {PAGE}"
    while True:
        with store.transaction() as execute:
            candidates = execute(select, (cutoff, chunk_size)).fetchall()
            key = _claim(execute, candidates, now) if candidates else None
        if not candidates:
            return
        if key is not None:
            yield key


def _claim(execute: Execute, candidates: list[Any], now: float) -> str | None:
    """Claim the candidates not claimed meanwhile by a concurrent run, and name the batch
    after the first and last it won (two batches never share a first failure)."""
    rows = ", ".join(["(?, ?)"] * len(candidates))
    params = tuple(value for row in candidates for value in (row[0], now))
    won = {row[0] for row in execute(CLAIM.format(rows=rows), params).fetchall()}
    claimed = [row for row in candidates if row[0] in won]
    if not claimed:
        return None
    (first, failed_at), (last, _) = claimed[0], claimed[-1]
    day = datetime.fromtimestamp(failed_at, UTC).strftime("%Y-%m-%d")
    key = f"{PREFIX}/{day}/{first}-{last}.jsonl.gz"
    ids = [row[0] for row in claimed]
    execute(_in(NAME_BATCH, ids), (key, *ids))
    return key


def _write(store: Store, blobs: BlobStore, key: str) -> int:
    """Put the batch's blob and read it back; the number of failures it holds."""
    with store.snapshot() as execute:
        records = _records(execute, key)
    lines = "".join(_line(record) for record in records)
    # mtime=0: the same rows give the same bytes, so that two runs resuming one batch at
    # once write the same blob and each reads back what it wrote.
    data = gzip.compress(lines.encode(), mtime=0)
    blobs.put(key, data)
    if blobs.get(key) != data:
        raise BlobStoreError(
            f"archive blob {key!r} in {blobs.url} read back differently from what was"
            " written; nothing was removed from the database, run the archive again"
        )
    return len(records)


def _records(execute: Execute, key: str) -> list[dict[str, JSON]]:
    """Each failure of the batch with its job, dead letter, attempts, recovery, review."""
    failures = _dicts(execute(BATCH_FAILURES, (key,)))
    if not failures:
        return []
    ids = [f["dead_letter_id"] for f in failures]
    job_ids = list(dict.fromkeys(f["job_id"] for f in failures))
    jobs = _by(_select(execute, JOBS, [*job_ids, *ids]), "id")
    attempts: dict[str, list[dict[str, JSON]]] = {}
    for attempt in _select(execute, ATTEMPTS, [*job_ids, *ids]):
        attempts.setdefault(attempt["job_id"], []).append(attempt)
    recovery = _by(_select(execute, RECOVERY, job_ids), "job_id")
    reviews = _by(_select(execute, REVIEWS, ids), "dead_letter_id")

    def job(job_id: str) -> dict[str, JSON] | None:
        row = jobs.get(job_id)
        # `history`, not `attempts`: that is the job's column counting them.
        return None if row is None else {**row, "history": attempts.get(job_id, [])}

    return [
        {
            "failure": f,
            "job": job(f["job_id"]),
            "letter": job(f["dead_letter_id"]),
            "recovery": recovery.get(f["job_id"]),
            "review": reviews.get(f["dead_letter_id"]),
        }
        for f in failures
    ]


# -- removing ----------------------------------------------------------------------


def _remove(
    store: Store,
    condition: str,
    cutoff: float,
    chunk_size: int,
    removed: Removed,
    after_chunk: Callable[[], None] | None = None,
) -> None:
    """Remove failures past `cutoff` that meet `condition`, a chunk per transaction."""
    select = f"SELECT f.dead_letter_id, f.job_id {PAST} {condition} {PAGE}"
    while True:
        with store.transaction() as execute:
            rows = execute(select, (cutoff, chunk_size)).fetchall()
            if rows:
                _delete(execute, [row[0] for row in rows], [row[1] for row in rows], removed)
        if not rows:
            return
        if after_chunk is not None:
            after_chunk()


def _delete(execute: Execute, ids: list[str], job_ids: list[str], removed: Removed) -> None:
    """Delete the failures `ids`, what belongs to them alone, and their jobs if done."""
    removed.failures += execute(_in(DELETE_FAILURES, ids), tuple(ids)).rowcount
    execute(_in(DELETE_REVIEWS, ids), tuple(ids))
    execute(_in(VOID_CLAIMS, ids), tuple(ids))
    unique_jobs = list(dict.fromkeys(job_ids))
    done = execute(_in(DELETE_DONE_JOBS, unique_jobs), tuple(unique_jobs)).fetchall()
    letters = execute(_in(DELETE_LETTERS, ids), (*ids, DEAD_LETTER_TASK)).fetchall()
    done_ids = [row[0] for row in done]
    gone = done_ids + [row[0] for row in letters]
    if gone:
        execute(_in(DELETE_ATTEMPTS, gone), tuple(gone))
    if done_ids:
        execute(_in(DELETE_RECOVERY, done_ids), tuple(done_ids))
    removed.jobs += len(gone)


# -- helpers -------------------------------------------------------------------------


class _Described(DbCursor, Protocol):
    """A cursor that names its columns, as every DB-API 2.0 driver's does."""

    @property
    def description(self) -> Sequence[Sequence[Any]]: ...


def _dicts(cursor: DbCursor) -> list[dict[str, JSON]]:
    """Rows as dicts; JSON columns parsed (SQLite hands back text, PostgreSQL values)."""
    names = [column[0] for column in cast(_Described, cursor).description]
    rows = [zip(names, row, strict=True) for row in cursor.fetchall()]
    return [{name: loads(v) if name in JSON_COLUMNS else v for name, v in row} for row in rows]


def _line(record: dict[str, JSON]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


def _select(execute: Execute, sql: str, ids: list[str]) -> list[dict[str, JSON]]:
    return _dicts(execute(_in(sql, ids), tuple(ids)))


def _by(rows: list[dict[str, JSON]], column: str) -> dict[str, dict[str, JSON]]:
    return {row[column]: row for row in rows}


def _in(sql: str, ids: Sequence[Any]) -> str:
    """`sql` with its `{ids}` replaced by one placeholder per id."""
    return sql.format(ids=", ".join("?" * len(ids)))


def _count(execute: Execute, sql: str, params: tuple[Any, ...]) -> int:
    return int(execute(sql, params).fetchone()[0])


def _count_past(execute: Execute, condition: str, cutoff: float) -> int:
    return _count(execute, f"SELECT count(*) {PAST} {condition}", (cutoff,))


def _tell(progress: Progress | None, removed: Removed, total: int) -> None:
    if progress is not None:
        progress(removed.failures, total)
