"""Jobs of other job systems, dead-lettered here: SQL that reads the same on both backends.

A host (Celery, RQ, Dramatiq) runs a message; each failed run it retries is kept in
`host_attempts`. When it gives up, the message's job is dead-lettered here in one
transaction, exactly as a native job is in `finish`: the job row (new, or the adopted
job a re-drive sent back), its attempts, and its dead letter on its DLQ. Every step is
idempotent per event id, so that a replayed spool or a signal sent twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deadletter.model import (
    Attempt,
    ErrorClass,
    HostAttempt,
    HostEvent,
    HostGaveUp,
    HostSucceeded,
    JobState,
    NewJob,
    Origin,
    parked_queue,
)
from deadletter.store import rows
from deadletter.store.base import DEAD_LETTER_TASK, dead_letter_id, dead_letter_payload
from deadletter.store.failures import Execute

HOST_ATTEMPT_COLUMNS = (
    "event_id, system, message_id, started_at, ended_at, worker, error_type, message,"
    " traceback, http_status, error_class, rule"
)

INSERT_HOST_ATTEMPT = f"""
INSERT INTO host_attempts ({HOST_ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

JOB_OF_MESSAGE = """
SELECT m.job_id, j.status FROM host_messages m JOIN queue_jobs j ON j.id = m.job_id
WHERE m.system = ? AND m.message_id = ?
"""

# The attempts of a message not yet given to a job, oldest first.
PENDING = f"""
SELECT {HOST_ATTEMPT_COLUMNS} FROM host_attempts
WHERE system = ? AND message_id = ? AND job_id IS NULL
ORDER BY ended_at, event_id
"""
TAKE_PENDING = (
    "UPDATE host_attempts SET job_id = ? WHERE system = ? AND message_id = ? AND job_id IS NULL"
)
DROP_PENDING = "DELETE FROM host_attempts WHERE system = ? AND message_id = ? AND job_id IS NULL"

INSERT_ORIGIN = """
INSERT INTO job_origins (job_id, system, queue, task, original_id, arguments, options, adopted_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (job_id) DO NOTHING
"""
ORIGIN = """
SELECT system, queue, task, original_id, arguments, options FROM job_origins WHERE job_id = ?
"""

INSERT_MESSAGE = """
INSERT INTO host_messages (system, message_id, job_id, sent_at) VALUES (?, ?, ?, ?)
ON CONFLICT (system, message_id) DO NOTHING
"""
SENT_AT = "SELECT sent_at FROM host_messages WHERE system = ? AND message_id = ?"
MARK_SENT = "UPDATE host_messages SET sent_at = ? WHERE system = ? AND message_id = ?"

# The job as the host ran it: dead-lettered after the attempts the host made.
INSERT_JOB = """
INSERT INTO queue_jobs (id, queue, task, payload, status, priority, attempts, max_retries,
    dead_letter_queue, run_at, created_at, started_at, completed_at, last_error, labels)
VALUES (?, ?, ?, ?, 'dead_lettered', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# A re-driven job the host failed again; it waited, queued, on its host.
DEAD_LETTER_AGAIN = """
UPDATE queue_jobs SET status = 'dead_lettered', attempts = attempts + ?, completed_at = ?,
    last_error = ?
WHERE id = ? AND status = 'queued'
"""

# A re-driven job the host ran to success, after its failed attempts there (if any) and
# the one that succeeded: the recovery trigger marks its recovery row recovered.
SUCCEEDED = """
UPDATE queue_jobs SET status = 'succeeded', attempts = attempts + ? + 1, completed_at = ?
WHERE id = ? AND status = 'queued'
"""

JOB = "SELECT id, queue, task, payload, labels, created_at, dead_letter_queue FROM queue_jobs"
ATTEMPTS = f"SELECT {rows.ATTEMPT_COLUMNS} FROM job_attempts WHERE job_id = ? ORDER BY seq"
INSERT_ATTEMPT = f"""
INSERT INTO job_attempts ({rows.ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_LETTER = """
INSERT INTO queue_jobs (id, queue, task, payload, status, priority, max_retries,
    dead_letter_queue, run_at, created_at, labels)
VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""


def adopted_job_id(system: str, message_id: str) -> str:
    """The id of the job a host message becomes here: the same message, the same job."""
    return f"{system}-{message_id}"


def record_host_events(execute: Execute, events: Sequence[HostEvent], *, now: float) -> list[str]:
    """Apply `events` in order; the ids of the jobs dead-lettered by them."""
    dead: list[str] = []
    for event in events:
        if isinstance(event, HostAttempt):
            execute(INSERT_HOST_ATTEMPT, _attempt_params(event)).fetchall()
        elif isinstance(event, HostGaveUp):
            job_id = _give_up(execute, event, now)
            if job_id is not None:
                dead.append(job_id)
        else:
            _succeeded(execute, event)
    return dead


def _give_up(execute: Execute, event: HostGaveUp, now: float) -> str | None:
    last = event.attempt
    known = execute(JOB_OF_MESSAGE, (last.system, last.message_id)).fetchone()
    if known is not None and known[1] != JobState.QUEUED.value:
        return None  # dead-lettered already: this is a replay, or an import of a known one
    if not execute(INSERT_HOST_ATTEMPT, _attempt_params(last)).fetchall():
        return None  # this very event was recorded before
    job_id = known[0] if known else adopted_job_id(last.system, last.message_id)
    pending = _take_pending(execute, job_id, last.system, last.message_id)
    error = rows.last_error(pending[-1])
    if known is None:
        _insert_job(execute, job_id, event, pending, error, now)
    elif execute(DEAD_LETTER_AGAIN, (len(pending), now, error, job_id)).rowcount == 0:
        return None
    _insert_letter(execute, job_id, event, now)
    return job_id


def _succeeded(execute: Execute, event: HostSucceeded) -> None:
    known = execute(JOB_OF_MESSAGE, (event.system, event.message_id)).fetchone()
    if known is None:  # a first run that succeeded after retries: its failures are moot
        execute(DROP_PENDING, (event.system, event.message_id))
        return
    pending = _take_pending(execute, known[0], event.system, event.message_id)
    execute(SUCCEEDED, (len(pending), event.at, known[0]))


def _take_pending(execute: Execute, job_id: str, system: str, message_id: str) -> list[Attempt]:
    """Give the message's pending attempts to the job, numbered after its earlier ones."""
    found = execute(PENDING, (system, message_id)).fetchall()
    before = len(execute(ATTEMPTS, (job_id,)).fetchall())
    attempts = [_job_attempt(job_id, before + index + 1, row) for index, row in enumerate(found)]
    for attempt in attempts:
        execute(INSERT_ATTEMPT, rows.attempt_params(attempt))
    execute(TAKE_PENDING, (job_id, system, message_id))
    return attempts


def _insert_job(
    execute: Execute,
    job_id: str,
    event: HostGaveUp,
    attempts: list[Attempt],
    error: str,
    now: float,
) -> None:
    origin = event.origin
    arguments = rows.dump_json(origin.arguments)
    execute(
        INSERT_ORIGIN,
        (
            job_id,
            origin.system,
            origin.queue,
            origin.task,
            origin.original_id,
            arguments,
            rows.dump_json(origin.options),
            now,
        ),
    )
    execute(INSERT_MESSAGE, (origin.system, event.attempt.message_id, job_id, None))
    first = attempts[0].started_at
    execute(
        INSERT_JOB,
        (
            job_id,
            event.queue,
            origin.task,
            arguments,
            len(attempts),
            max(len(attempts) - 1, 0),
            event.dead_letter_queue,
            first,
            first,
            first,
            now,
            error,
            rows.dump_json(event.labels),
        ),
    )


def _insert_letter(execute: Execute, job_id: str, event: HostGaveUp, now: float) -> None:
    """The dead letter, with the job's whole history, as `finish` writes a native one."""
    row = execute(f"{JOB} WHERE id = ?", (job_id,)).fetchone()
    found = execute(ATTEMPTS, (job_id,)).fetchall()
    history = [rows.attempt(_named(r, rows.ATTEMPT_COLUMNS)) for r in found]
    job = _named(row, "id, queue, task, payload, labels, created_at, dead_letter_queue")
    payload = {
        **dead_letter_payload(job, history, event.reason, poison=False),
        "origin": event.origin.to_json(),
    }
    letter = NewJob(
        id=dead_letter_id(job_id, len(history)),
        queue=job["dead_letter_queue"],
        task=DEAD_LETTER_TASK,
        payload=payload,
        max_retries=event.dlq_max_retries,
        dead_letter_queue=parked_queue(job["dead_letter_queue"]),
        run_at=now,
        created_at=now,
        labels=rows.load_labels(job["labels"]),
    )
    execute(INSERT_LETTER, rows.new_job_params(letter)[:10])  # no idempotency key


# -- origins and re-drives ---------------------------------------------------------------


def origin(execute: Execute, job_id: str) -> Origin | None:
    row = execute(ORIGIN, (job_id,)).fetchone()
    if row is None:
        return None
    system, queue, task, original_id, arguments, options = row
    return Origin(
        system, queue, task, original_id, rows.load_object(arguments), rows.load_object(options)
    )


def prepare_send(execute: Execute, system: str, message_id: str, job_id: str) -> bool:
    """Record that `message_id` re-drives `job_id`; whether it was sent already."""
    execute(INSERT_MESSAGE, (system, message_id, job_id, None))
    sent = execute(SENT_AT, (system, message_id)).fetchone()
    return sent is not None and sent[0] is not None


def mark_sent(execute: Execute, system: str, message_id: str, at: float) -> None:
    execute(MARK_SENT, (at, system, message_id))


# -- rows -----------------------------------------------------------------------------


def _attempt_params(a: HostAttempt) -> tuple[Any, ...]:
    error_class = a.error_class.value if a.error_class else None
    return (
        a.event_id,
        a.system,
        a.message_id,
        a.started_at,
        a.ended_at,
        a.worker,
        a.error_type,
        a.message,
        a.traceback,
        a.http_status,
        error_class,
        a.rule,
    )


def _job_attempt(job_id: str, number: int, row: Any) -> Attempt:
    values = _named(row, HOST_ATTEMPT_COLUMNS)
    error_class = values["error_class"]
    return Attempt(
        job_id=job_id,
        number=number,
        started_at=values["started_at"],
        ended_at=values["ended_at"],
        worker=values["worker"],
        error_type=values["error_type"],
        message=values["message"],
        traceback=values["traceback"],
        http_status=values["http_status"],
        error_class=ErrorClass(error_class) if error_class else None,
        rule=values["rule"],
    )


def _named(row: Any, columns: str) -> dict[str, Any]:
    """A row read by position (both backends' cursors here) as a dict by column name."""
    return dict(zip([c.strip() for c in columns.split(",")], row, strict=True))
