"""The review log as rows, in SQL both backends share (`?` placeholders, like failures.py).

The functions take the caller's `Execute`, so that marking an entry and its audit
record share one transaction (ops/review.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from deadletter.store.failures import Execute
from deadletter.store.query import Clause

# The review log's keyset order: newest entry first, then by id (ops/review.py).
KEYSET = ("v.created_at", "v.dead_letter_id")


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    """An entry of the review log, with what its failure says (None if archived)."""

    dead_letter_id: str
    job_id: str
    fingerprint: str
    created_at: float
    reviewed_at: float | None
    reviewed_by: str | None
    note: str | None
    queue: str | None
    error_type: str | None
    error_message: str | None


# Aliases: `v` for dlq_review_log, `f` for dlq_failures (ops/review.py's clauses use them).
SELECT = """
SELECT v.dead_letter_id, v.job_id, v.fingerprint, v.created_at, v.reviewed_at, v.reviewed_by,
    v.note, f.queue, f.error_type, f.error_message
FROM dlq_review_log v
LEFT JOIN dlq_failures f ON f.dead_letter_id = v.dead_letter_id
"""
# Conditional: of two people marking one entry at once, the first is recorded.
MARK = """
UPDATE dlq_review_log SET reviewed_at = ?, reviewed_by = ?, note = ?
WHERE dead_letter_id = ? AND reviewed_at IS NULL
RETURNING job_id
"""
KNOWN = "SELECT 1 FROM dlq_review_log WHERE dead_letter_id = ?"


def reviewed_is(reviewed: bool) -> Clause:
    """Entries reviewed already (True) or still open (False)."""
    return f"v.reviewed_at IS {'NOT ' if reviewed else ''}NULL", ()


def entries(execute: Execute, condition: Clause, order_by: str, limit: int) -> list[ReviewEntry]:
    """Up to `limit` entries that meet `condition` (a WHERE clause), in `order_by`."""
    where, params = condition
    rows = execute(f"{SELECT} {where} {order_by} LIMIT ?", (*params, limit)).fetchall()
    return [ReviewEntry(*row) for row in rows]


def mark(execute: Execute, dead_letter_id: str, *, at: float, by: str, note: str) -> str | None:
    """Mark an open entry reviewed; its job's id, or None if it is unknown or was
    reviewed already (see `exists`)."""
    row = execute(MARK, (at, by, note, dead_letter_id)).fetchone()
    return None if row is None else str(row[0])


def exists(execute: Execute, dead_letter_id: str) -> bool:
    return execute(KNOWN, (dead_letter_id,)).fetchone() is not None
