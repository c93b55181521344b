"""Row <-> model conversion shared by the SQL backends."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, cast

from deadletter.model import (
    Attempt,
    ErrorClass,
    Job,
    JobState,
    JSONObject,
    JSONValue,
    LeasedJob,
    NewJob,
)


class Row(Protocol):
    """A database row read by column name (sqlite3.Row, psycopg dict rows)."""

    def __getitem__(self, key: str) -> Any: ...


LEASED_COLUMNS = (
    "id, queue, task, payload, attempts, max_retries, dead_letter_queue, lease_token,"
    " lease_expires_at, labels, attempt_started_at, worker_losses"
)

ATTEMPT_COLUMNS = (
    "job_id, number, started_at, ended_at, worker, error_type, message, traceback,"
    " http_status, error_class, rule"
)


# One encoder for every value: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class JsonText(str):
    """A value already encoded as JSON text, stored as it is instead of encoded again.

    The producer encodes a payload once to check that it is JSON and within the size
    limit (tasks.py); `NewJob.payload` then carries that text to the store."""

    __slots__ = ()


def dump_json(value: object) -> str:
    """Compact JSON text of `value` (a payload, labels, an origin's arguments); a
    `JsonText` is that text already."""
    return value if isinstance(value, JsonText) else _ENCODER.encode(value)


def dump_json_array(values: Sequence[object]) -> str:
    """One JSON array of `values`, for a batch that PostgreSQL parses in one pass."""
    return f"[{','.join([dump_json(value) for value in values])}]"


def enqueued_ids(jobs: Sequence[NewJob], holders: dict[str, str]) -> list[str]:
    """What an enqueue returns, in order: each job's id, or the id of the job that already
    held its idempotency key (`holders`: key -> id)."""
    return [holders.get(j.idempotency_key, j.id) if j.idempotency_key else j.id for j in jobs]


def loads(value: Any) -> JSONValue:
    """SQLite hands JSON back as text, PostgreSQL (jsonb) as Python values, or as text
    where a query casts it (a lease: store/postgres.py LEASED_COLUMNS)."""
    if not isinstance(value, str):
        return cast(JSONValue, value)
    # Most jobs carry no labels; decoding "{}" costs as much as a small payload.
    return {} if value == "{}" else cast(JSONValue, json.loads(value))


def load_labels(value: Any) -> dict[str, str]:
    """A job's labels, read back. Not checked: every lease reads them, and they are
    written only from a `dict[str, str]` (`NewJob.labels`, `HostGaveUp.labels`)."""
    return cast(dict[str, str], loads(value))


def load_object(value: Any) -> JSONObject:
    """A JSON object read back; anything else reads as an empty one."""
    loaded = loads(value)
    return loaded if isinstance(loaded, dict) else {}


def leased_job(values: Sequence[Any]) -> LeasedJob:
    """A row of LEASED_COLUMNS read by position: a lease converts hundreds of rows, and
    unpacking costs less than a look-up by name per column."""
    (
        job_id,
        queue,
        task,
        payload,
        attempts,
        max_retries,
        dead_letter_queue,
        token,
        lease_expires_at,
        labels,
        started_at,
        worker_losses,
    ) = values
    return LeasedJob(
        id=job_id,
        queue=queue,
        task=task,
        payload=loads(payload),
        attempt=attempts,
        max_retries=max_retries,
        dead_letter_queue=dead_letter_queue,
        token=token,
        lease_expires_at=lease_expires_at,
        labels=load_labels(labels),
        started_at=started_at,
        worker_losses=worker_losses,
    )


def job(row: Row) -> Job:
    return Job(
        id=row["id"],
        queue=row["queue"],
        task=row["task"],
        payload=loads(row["payload"]),
        status=JobState(row["status"]),
        priority=row["priority"],
        attempts=row["attempts"],
        max_retries=row["max_retries"],
        dead_letter_queue=row["dead_letter_queue"],
        run_at=row["run_at"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        lease_token=row["lease_token"],
        last_error=row["last_error"],
        labels=load_labels(row["labels"]),
        idempotency_key=row["idempotency_key"],
        worker_losses=row["worker_losses"],
    )


def attempt(row: Row) -> Attempt:
    error_class = row["error_class"]
    return Attempt(
        job_id=row["job_id"],
        number=row["number"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        worker=row["worker"],
        error_type=row["error_type"],
        message=row["message"],
        traceback=row["traceback"],
        http_status=row["http_status"],
        error_class=ErrorClass(error_class) if error_class else None,
        rule=row["rule"],
    )


def attempt_params(a: Attempt) -> tuple[Any, ...]:
    return (
        a.job_id,
        a.number,
        a.started_at,
        a.ended_at,
        a.worker,
        a.error_type,
        a.message,
        a.traceback,
        a.http_status,
        a.error_class.value if a.error_class else None,
        a.rule,
    )


def last_error(a: Attempt) -> str:
    return f"{a.error_type}: {a.message}" if a.error_type else str(a.message)


def new_job_params(j: NewJob) -> tuple[Any, ...]:
    return (
        j.id,
        j.queue,
        j.task,
        dump_json(j.payload),
        j.priority,
        j.max_retries,
        j.dead_letter_queue,
        j.run_at,
        j.created_at,
        dump_json(j.labels) if j.labels else "{}",
        j.idempotency_key,
        j.task_max_retries,
    )
