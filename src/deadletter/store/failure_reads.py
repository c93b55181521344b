"""Reading handled failures: the failure list, error groups and payload history, in SQL
both backends share (see failures.py, which writes them).

Conditions come as clauses (store/query.py) against the aliases of `FAILURES_FROM`:
`f` for dlq_failures, `j` for the job, `r` for its recovery row; `matching` writes those
of an operator's filter (ops/filters.py FailureFilter), `KEYSET` names the list's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from deadletter.store.failures import Execute
from deadletter.store.query import LATEST_FAILURE, Clause, equal, marks, where

FAILURE_COLUMNS = """f.dead_letter_id, f.job_id, f.queue, f.task, f.error_class, f.rule,
    f.fingerprint, f.error_type, f.error_message, f.http_status, f.retry_count, f.reason,
    f.labels, f.forensics_key, f.created_at, f.failed_at, f.handled_at, j.status, r.status"""

FAILURES_FROM = """FROM dlq_failures f
LEFT JOIN queue_jobs j ON j.id = f.job_id
LEFT JOIN dlq_recovery_queue r ON r.job_id = f.job_id"""

# The job is failed now, not abandoned, and this is its latest failure: what a bulk
# action may move (ops/bulk.py).
CURRENT: Clause = (
    f"j.status = 'failed' AND coalesce(r.status, '') <> 'abandoned' AND {LATEST_FAILURE}",
    (),
)

# The failure list's keyset order: newest failure first, then by id (ops/failures.py).
KEYSET = ("f.failed_at", "f.dead_letter_id")
# LIKE's escape character: one that needs no escaping in either database's string syntax.
ESCAPE = "!"

GROUP_COLUMNS = (
    "fingerprint, error_class, error_type, sample_message, queue, count, first_seen, last_seen"
)
# Both orders end with the fingerprint, so that an index on (column, fingerprint) serves them.
GROUP_ORDERS = {
    "count": "ORDER BY count DESC, fingerprint DESC",
    "last_seen": "ORDER BY last_seen DESC, fingerprint DESC",
}
GROUP = f"SELECT {GROUP_COLUMNS} FROM dlq_error_groups WHERE fingerprint = ?"

HISTORY = """
SELECT payload, replaced_at, replaced_by FROM job_payload_history WHERE job_id = ? ORDER BY seq
"""


@dataclass(frozen=True, slots=True)
class Group:
    """Failures of one cause (one fingerprint); `queue` is where it was first seen."""

    fingerprint: str
    error_class: str
    error_type: str | None
    sample_message: str | None
    queue: str
    count: int
    first_seen: float
    last_seen: float


def matching(
    *,
    queue: str | None = None,
    task: str | None = None,
    error_class: str | None = None,
    rule: str | None = None,
    fingerprint: str | None = None,
    since: float | None = None,
    until: float | None = None,
    text: str | None = None,
    job_ids: Sequence[str] = (),
    labels: Sequence[tuple[str, str]] = (),
) -> list[Clause]:
    """The conditions on failures `f` of an operator's filter; ops/filters.py
    FailureFilter says what each field means."""
    equals = {
        "f.queue": queue,
        "f.task": task,
        "f.error_class": error_class,
        "f.rule": rule,
        "f.fingerprint": fingerprint,
    }
    found = [equal(column, value) for column, value in equals.items() if value]
    if since is not None:
        found.append(("f.failed_at >= ?", (since,)))
    if until is not None:
        found.append(("f.failed_at < ?", (until,)))
    if text:
        found.append(_text_clause(text))
    if job_ids:
        found.append((f"f.job_id IN ({marks(job_ids)})", tuple(job_ids)))
    # `->>` reads a JSON member as text on both databases (SQLite 3.38+); the cast
    # picks PostgreSQL's text-keyed operator for a parameter of unknown type.
    found.extend(("f.labels ->> CAST(? AS TEXT) = ?", (name, value)) for name, value in labels)
    return found


def of_job(job_id: str) -> Clause:
    return equal("f.job_id", job_id)


def _text_clause(text: str) -> Clause:
    """`text` as a case-insensitive substring of the message, the type or the job id."""
    pattern = "%" + _escape_like(text.lower()) + "%"
    columns = ("f.error_message", "f.error_type", "f.job_id")
    tests = [f"lower(coalesce({c}, '')) LIKE ? ESCAPE '{ESCAPE}'" for c in columns]
    return f"({' OR '.join(tests)})", (pattern,) * len(columns)


def _escape_like(text: str) -> str:
    for special in (ESCAPE, "%", "_"):
        text = text.replace(special, ESCAPE + special)
    return text


def fetch_failures(
    execute: Execute, clauses: list[Clause], order_by: str, *, limit: int, payload: bool = False
) -> list[tuple[Any, ...]]:
    """Rows of failures matching `clauses`, in `order_by`: FAILURE_COLUMNS, then the
    job's payload when asked."""
    condition, params = where(clauses)
    columns = FAILURE_COLUMNS + (", j.payload" if payload else "")
    sql = f"SELECT {columns} {FAILURES_FROM} {condition} {order_by} LIMIT ?"
    return [tuple(row) for row in execute(sql, (*params, limit)).fetchall()]


def count_failures(execute: Execute, clauses: list[Clause]) -> int:
    """How many failures match `clauses`."""
    condition, params = where(clauses)
    return int(execute(f"SELECT count(*) {FAILURES_FROM} {condition}", params).fetchone()[0])


def groups(
    execute: Execute,
    *,
    error_class: str | None,
    queue: str | None,
    sort: Literal["count", "last_seen"],
    limit: int,
) -> list[Group]:
    """Error groups of a class and a queue (either None: any), biggest or latest first."""
    clauses = [
        (f"{column} = ?", (value,))
        for column, value in (("error_class", error_class), ("queue", queue))
        if value is not None
    ]
    condition, params = where(clauses)
    sql = f"SELECT {GROUP_COLUMNS} FROM dlq_error_groups {condition} {GROUP_ORDERS[sort]} LIMIT ?"
    return [Group(*row) for row in execute(sql, (*params, limit)).fetchall()]


def group(execute: Execute, fingerprint: str) -> Group | None:
    row = execute(GROUP, (fingerprint,)).fetchone()
    return None if row is None else Group(*row)


def payload_history(execute: Execute, job_id: str) -> list[tuple[str, float, str]]:
    """The payloads operators' edits replaced (JSON text, when, by whom), oldest first."""
    return [(p, at, by) for p, at, by in execute(HISTORY, (job_id,)).fetchall()]
