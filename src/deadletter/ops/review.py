"""The review log: UNKNOWN failures waiting for a person, and marking them reviewed."""

from __future__ import annotations

import time
from dataclasses import dataclass

from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.filters import Clause, Keyset, Page, check_limit, operator_text, required, where
from deadletter.ops.recovery import ActionResult, Outcome
from deadletter.store.base import Store


@dataclass(frozen=True, slots=True)
class ReviewEntry:
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


SELECT = """
SELECT v.dead_letter_id, v.job_id, v.fingerprint, v.created_at, v.reviewed_at, v.reviewed_by,
    v.note, f.queue, f.error_type, f.error_message
FROM dlq_review_log v
LEFT JOIN dlq_failures f ON f.dead_letter_id = v.dead_letter_id
"""
KEYS = Keyset("review", "v.created_at", "v.dead_letter_id")


def review_log(
    store: Store, *, reviewed: bool | None = False, limit: int = 50, cursor: str | None = None
) -> Page[ReviewEntry]:
    """Entries newest first: open ones by default, reviewed ones, or (None) all."""
    clauses: list[Clause] = [*KEYS.after(cursor, reviewed)]
    if reviewed is not None:
        clauses.append((f"v.reviewed_at IS {'NOT ' if reviewed else ''}NULL", ()))
    condition, params = where(clauses)
    with store.snapshot() as execute:
        sql = f"{SELECT} {condition} {KEYS.order_by} LIMIT ?"
        rows = execute(sql, (*params, check_limit(limit) + 1)).fetchall()
    entries = [ReviewEntry(*row) for row in rows]
    return KEYS.page(entries, limit, lambda e: (e.created_at, e.dead_letter_id), reviewed)


# Conditional: of two people marking one entry at once, the first is recorded.
MARK = """
UPDATE dlq_review_log SET reviewed_at = ?, reviewed_by = ?, note = ?
WHERE dead_letter_id = ? AND reviewed_at IS NULL
RETURNING job_id
"""


def mark_reviewed(store: Store, dead_letter_id: str, *, by: str, note: str = "") -> ActionResult:
    who, now, note = required(by, "by"), time.time(), operator_text(note)
    with store.transaction() as execute:
        marked = execute(MARK, (now, who, note, dead_letter_id)).fetchone()
        if marked is None:
            known = execute(
                "SELECT 1 FROM dlq_review_log WHERE dead_letter_id = ?", (dead_letter_id,)
            ).fetchone()
            outcome = Outcome.ALREADY_REVIEWED if known else Outcome.NOT_FOUND
            return ActionResult(dead_letter_id, outcome, f"{dead_letter_id}: {outcome.value}")
        audit.record(
            execute,
            at=now,
            actor=who,
            action=AuditAction.REVIEW,
            target=dead_letter_id,
            reason=note,
            details={"job_id": marked[0]},
        )
    return ActionResult(dead_letter_id, Outcome.REVIEWED, f"{dead_letter_id} is reviewed")
