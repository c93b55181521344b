"""Archive and purge in SQL both backends share (see failures.py): which failures are
past a cutoff, claims on batches, a batch's rows, and what leaves the database with a
failure. ops/archive.py holds the procedure: batches, blobs, read-back, pacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast

from deadletter.model import JSONObject, JSONValue
from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.store.failures import DbCursor, Execute
from deadletter.store.query import marks
from deadletter.store.rows import loads

JSON_COLUMNS = frozenset({"payload", "labels"})
# Which failures past the cutoff: not claimed by a batch yet, archived, or any.
Which = Literal["unclaimed", "archived", "any"]

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


def _condition(which: Which) -> str:
    return {"unclaimed": UNCLAIMED, "archived": ARCHIVED, "any": ""}[which]


def count_past(execute: Execute, which: Which, cutoff: float) -> int:
    """How many failures past `cutoff` are `which`."""
    return _count(execute, f"SELECT count(*) {PAST} {_condition(which)}", (cutoff,))


def count_unfinished(execute: Execute) -> int:
    """Failures claimed by a batch not archived yet."""
    return _count(execute, UNFINISHED_COUNT, ())


def unfinished_batches(execute: Execute) -> list[str]:
    """Keys of the batches claimed but not archived yet."""
    return [row[0] for row in execute(UNFINISHED, ()).fetchall()]


def unclaimed_page(execute: Execute, cutoff: float, limit: int) -> list[tuple[str, float]]:
    """The oldest failures past `cutoff` no batch claimed: (dead letter id, failed_at)."""
    sql = f"SELECT f.dead_letter_id, f.failed_at {PAST} {UNCLAIMED} {PAGE}"
    return [(row[0], row[1]) for row in execute(sql, (cutoff, limit)).fetchall()]


def past_page(execute: Execute, which: Which, cutoff: float, limit: int) -> list[tuple[str, str]]:
    """The oldest failures past `cutoff` that are `which`: (dead letter id, job id)."""
    sql = f"SELECT f.dead_letter_id, f.job_id {PAST} {_condition(which)} {PAGE}"
    return [(row[0], row[1]) for row in execute(sql, (cutoff, limit)).fetchall()]


def claim(execute: Execute, ids: Sequence[str], now: float) -> set[str]:
    """Claim the failures `ids` for a batch; those claimed here (not by another run)."""
    rows = ", ".join(["(?, ?)"] * len(ids))
    params = tuple(value for dead_letter_id in ids for value in (dead_letter_id, now))
    return {row[0] for row in execute(CLAIM.format(rows=rows), params).fetchall()}


def name_batch(execute: Execute, key: str, ids: Sequence[str]) -> None:
    execute(_in(NAME_BATCH, ids), (key, *ids))


def mark_archived(execute: Execute, key: str, now: float) -> None:
    execute(MARK_ARCHIVED, (now, key))


def batch_records(execute: Execute, key: str) -> list[JSONObject]:
    """Each failure of the batch with its job, dead letter, attempts, recovery, review."""
    failures = _dicts(execute(BATCH_FAILURES, (key,)))
    if not failures:
        return []
    ids = [_id(f, "dead_letter_id") for f in failures]
    job_ids = list(dict.fromkeys(_id(f, "job_id") for f in failures))
    jobs = _by(_select(execute, JOBS, [*job_ids, *ids]), "id")
    attempts: dict[str, list[JSONValue]] = {}
    for attempt in _select(execute, ATTEMPTS, [*job_ids, *ids]):
        attempts.setdefault(_id(attempt, "job_id"), []).append(attempt)
    recovery = _by(_select(execute, RECOVERY, job_ids), "job_id")
    reviews = _by(_select(execute, REVIEWS, ids), "dead_letter_id")

    def job(job_id: str) -> JSONObject | None:
        row = jobs.get(job_id)
        # `history`, not `attempts`: that is the job's column counting them.
        return None if row is None else {**row, "history": attempts.get(job_id, [])}

    return [
        {
            "failure": f,
            "job": job(_id(f, "job_id")),
            "letter": job(_id(f, "dead_letter_id")),
            "recovery": recovery.get(_id(f, "job_id")),
            "review": reviews.get(_id(f, "dead_letter_id")),
        }
        for f in failures
    ]


def delete(execute: Execute, ids: list[str], job_ids: list[str]) -> tuple[int, int]:
    """Delete the failures `ids`, what belongs to them alone, and their jobs if done;
    how many failures and jobs (failed jobs and dead letters) left."""
    failures = execute(_in(DELETE_FAILURES, ids), tuple(ids)).rowcount
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
    return failures, len(gone)


# -- helpers ---------------------------------------------------------------------


class _Described(DbCursor, Protocol):
    """A cursor that names its columns, as every DB-API 2.0 driver's does."""

    @property
    def description(self) -> Sequence[Sequence[Any]]: ...


def _dicts(cursor: DbCursor) -> list[JSONObject]:
    """Rows as dicts; JSON columns parsed (SQLite hands back text, PostgreSQL values)."""
    names = [column[0] for column in cast(_Described, cursor).description]
    rows = [zip(names, row, strict=True) for row in cursor.fetchall()]
    return [{name: loads(v) if name in JSON_COLUMNS else v for name, v in row} for row in rows]


def _select(execute: Execute, sql: str, ids: list[str]) -> list[JSONObject]:
    return _dicts(execute(_in(sql, ids), tuple(ids)))


def _by(rows: list[JSONObject], column: str) -> dict[str, JSONObject]:
    return {_id(row, column): row for row in rows}


def _id(row: JSONObject, column: str) -> str:
    """An id column of a row (a text column: `str` only tells mypy so)."""
    return str(row[column])


def _in(sql: str, ids: Sequence[Any]) -> str:
    """`sql` with its `{ids}` replaced by one placeholder per id."""
    return sql.format(ids=marks(ids))


def _count(execute: Execute, sql: str, params: tuple[Any, ...]) -> int:
    return int(execute(sql, params).fetchone()[0])
