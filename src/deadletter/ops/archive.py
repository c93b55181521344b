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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deadletter.errors import BlobStoreError
from deadletter.forensics.base import BlobStore
from deadletter.model import JSONObject
from deadletter.store import archive as store_archive
from deadletter.store.base import Store
from deadletter.store.failures import Execute

# Failures per blob: a blob of a few hundred kilobytes, and statements whose parameters
# (two per failure at most) stay far below both databases' limits.
CHUNK = 2000
PREFIX = "archive/failures"

# (failures done, failures in all): called as the run goes.
Progress = Callable[[int, int], None]


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
        total = store_archive.count_unfinished(execute) + store_archive.count_past(
            execute, "unclaimed", cutoff
        )
    archived = Archived()
    # First what a crashed run verified but did not remove, then batch by batch.
    _remove(store, "archived", cutoff, chunk_size, archived.removed)
    for key in _batches(store, cutoff, chunk_size, now):
        archived.failures += _write(store, blobs, key)
        with store.transaction() as execute:
            store_archive.mark_archived(execute, key, now)
        archived.blobs.append(key)
        if progress is not None:
            progress(archived.failures, total)
        _remove(store, "archived", cutoff, chunk_size, archived.removed)
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
    which: store_archive.Which = "archived" if archived_only else "any"
    cutoff = now - older_than_seconds
    with store.snapshot() as execute:
        total = store_archive.count_past(execute, which, cutoff)
    removed = Removed()
    _remove(store, which, cutoff, chunk_size, removed, lambda: _tell(progress, removed, total))
    return removed


def archivable(store: Store, *, older_than_seconds: float, now: float) -> int:
    """How many failures `archive` would take now (a dry run)."""
    with store.snapshot() as execute:
        return store_archive.count_past(execute, "unclaimed", now - older_than_seconds)


def purgeable(
    store: Store, *, older_than_seconds: float, now: float, archived_only: bool = True
) -> int:
    """How many failures `purge` would remove now (a dry run)."""
    with store.snapshot() as execute:
        which: store_archive.Which = "archived" if archived_only else "any"
        return store_archive.count_past(execute, which, now - older_than_seconds)


# -- claiming and writing batches ---------------------------------------------------


def _batches(store: Store, cutoff: float, chunk_size: int, now: float) -> Iterator[str]:
    """Keys of the batches to write: those an earlier run left unfinished, then new ones."""
    with store.snapshot() as execute:
        unfinished = store_archive.unfinished_batches(execute)
    yield from unfinished
    while True:
        with store.transaction() as execute:
            candidates = store_archive.unclaimed_page(execute, cutoff, chunk_size)
            key = _claim(execute, candidates, now) if candidates else None
        if not candidates:
            return
        if key is not None:
            yield key


def _claim(execute: Execute, candidates: list[tuple[str, float]], now: float) -> str | None:
    """Claim the candidates not claimed meanwhile by a concurrent run, and name the batch
    after the first and last it won (two batches never share a first failure)."""
    won = store_archive.claim(execute, [row[0] for row in candidates], now)
    claimed = [row for row in candidates if row[0] in won]
    if not claimed:
        return None
    (first, failed_at), (last, _) = claimed[0], claimed[-1]
    day = datetime.fromtimestamp(failed_at, UTC).strftime("%Y-%m-%d")
    key = f"{PREFIX}/{day}/{first}-{last}.jsonl.gz"
    ids = [row[0] for row in claimed]
    store_archive.name_batch(execute, key, ids)
    return key


def _write(store: Store, blobs: BlobStore, key: str) -> int:
    """Put the batch's blob and read it back; the number of failures it holds."""
    with store.snapshot() as execute:
        records = store_archive.batch_records(execute, key)
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


# -- removing ----------------------------------------------------------------------


def _remove(
    store: Store,
    which: store_archive.Which,
    cutoff: float,
    chunk_size: int,
    removed: Removed,
    after_chunk: Callable[[], None] | None = None,
) -> None:
    """Remove failures past `cutoff` that are `which`, a chunk per transaction."""
    while True:
        with store.transaction() as execute:
            page = store_archive.past_page(execute, which, cutoff, chunk_size)
            if page:
                ids, job_ids = [row[0] for row in page], [row[1] for row in page]
                failures, jobs = store_archive.delete(execute, ids, job_ids)
                removed.failures += failures
                removed.jobs += jobs
        if not page:
            return
        if after_chunk is not None:
            after_chunk()


# -- helpers -------------------------------------------------------------------------


def _line(record: JSONObject) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


def _tell(progress: Progress | None, removed: Removed, total: int) -> None:
    if progress is not None:
        progress(removed.failures, total)
