"""Parked dead letters, in SQL both backends share (see failures.py): found by the
failure filter, and handed back to the DLQ handler.

A letter the handler gave up on stays `dead_lettered` on its DLQ, and the worker puts a
letter about it, its parked row, on the DLQ's parked queue (model.parked_queue): the
parked row's payload names the letter (`job_id`), and the letter's payload names the
job. `PARKED` reads each as the row of a failure (`f`, with the columns the filter's
clauses name), so that ops/filters.py's `FailureFilter` selects parked letters as it
selects failures: by the job's queue, task, labels and id, and by when the job failed
(`failed_at`, when its letter was written); `text` searches the handler's last error.
"""

from __future__ import annotations

from dataclasses import dataclass

from deadletter.errors import StoreError
from deadletter.store.base import DEAD_LETTER_TASK
from deadletter.store.failures import Execute
from deadletter.store.query import Clause, marks, where


@dataclass(frozen=True, slots=True)
class ParkedLetter:
    """A dead letter the handler gave up on, and where it waits."""

    parked_id: str
    dead_letter_id: str
    dead_letter_queue: str
    job_id: str
    queue: str
    task: str
    failed_at: float
    parked_at: float
    attempts: int
    error: str | None


PARKED = f"""(
SELECT p.id AS parked_id, d.id AS dead_letter_id, d.queue AS dead_letter_queue,
    d.payload ->> 'job_id' AS job_id, d.payload ->> 'queue' AS queue,
    d.payload ->> 'task' AS task, d.created_at AS failed_at, p.created_at AS parked_at,
    d.attempts AS attempts, d.last_error AS error_message,
    CAST(NULL AS TEXT) AS error_type, d.labels AS labels
FROM queue_jobs p
JOIN queue_jobs d ON d.id = p.payload ->> 'job_id' AND d.dead_letter_queue = p.queue
WHERE p.task = '{DEAD_LETTER_TASK}' AND p.status = 'queued'
    AND d.task = '{DEAD_LETTER_TASK}' AND d.status = 'dead_lettered') f"""

COLUMNS = (
    "f.parked_id, f.dead_letter_id, f.dead_letter_queue, f.job_id, f.queue, f.task,"
    " f.failed_at, f.parked_at, f.attempts, f.error_message"
)

# The parked row goes first, and only while it still waits: of two operators handing
# the same letter back at once, the second finds it gone and changes nothing.
DROP_PARKED = "DELETE FROM queue_jobs WHERE id = ? AND status = 'queued'"

# As a requeue does (store/recovery.py): a fresh retry budget, the attempts carrying on,
# so that its attempt history and the id of a letter parked again stay its own.
QUEUE_LETTER = f"""
UPDATE queue_jobs
SET status = 'queued', max_retries = attempts + ?, run_at = ?, completed_at = NULL,
    lease_owner = NULL, lease_expires_at = NULL, requeues = requeues + 1
WHERE id = ? AND status = 'dead_lettered' AND task = '{DEAD_LETTER_TASK}'
"""

KIND = "SELECT task, status, queue FROM queue_jobs WHERE id = ?"


def with_ids(ids: list[str]) -> Clause:
    """Letters named by any of their ids: the parked row's, the letter's, or the job's."""
    shown = marks(ids)
    condition = (
        f"f.parked_id IN ({shown}) OR f.dead_letter_id IN ({shown}) OR f.job_id IN ({shown})"
    )
    return condition, (*ids, *ids, *ids)


def parked(execute: Execute, clauses: list[Clause], limit: int) -> list[ParkedLetter]:
    """Up to `limit` parked letters meeting `clauses`, their jobs' oldest failure first."""
    sql, params = where(clauses)
    order = "ORDER BY f.failed_at, f.parked_id LIMIT ?"
    rows = execute(f"SELECT {COLUMNS} FROM {PARKED} {sql} {order}", (*params, limit))
    return [ParkedLetter(*row) for row in rows.fetchall()]


def count_parked(execute: Execute, clauses: list[Clause]) -> int:
    sql, params = where(clauses)
    return int(execute(f"SELECT count(*) FROM {PARKED} {sql}", params).fetchone()[0])


def rehandle(execute: Execute, letter: ParkedLetter, *, retries: int, at: float) -> bool:
    """Queue `letter` for the handler again with `retries` more attempts, at `at`, and
    remove its parked row; False, with nothing changed, when it is parked no longer."""
    if execute(DROP_PARKED, (letter.parked_id,)).rowcount != 1:
        return False
    if execute(QUEUE_LETTER, (retries, at, letter.dead_letter_id)).rowcount != 1:
        # Read as dead-lettered in this transaction, and only a rehandle queues such a
        # letter: should it have changed anyway, the transaction is undone, parked row and all.
        raise StoreError(f"dead letter {letter.dead_letter_id} changed while handed back")
    return True


def kind(execute: Execute, job_id: str) -> tuple[str, str, str] | None:
    """The task, status and queue of the job (or letter) `job_id`; None if none has it."""
    row = execute(KIND, (job_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))
