"""The review log: UNKNOWN failures waiting for a person, and marking them reviewed."""

from __future__ import annotations

import time

from deadletter.ops import audit
from deadletter.ops.audit import AuditAction
from deadletter.ops.filters import Keyset, Page, check_limit, operator_text, required
from deadletter.ops.recovery import ActionResult, Outcome
from deadletter.store import review as store_review
from deadletter.store.base import Store
from deadletter.store.query import Clause, where
from deadletter.store.review import ReviewEntry as ReviewEntry

KEYS = Keyset("review", *store_review.KEYSET)


def review_log(
    store: Store, *, reviewed: bool | None = False, limit: int = 50, cursor: str | None = None
) -> Page[ReviewEntry]:
    """Entries newest first: open ones by default, reviewed ones, or (None) all."""
    clauses: list[Clause] = [*KEYS.after(cursor, reviewed)]
    if reviewed is not None:
        clauses.append(store_review.reviewed_is(reviewed))
    with store.snapshot() as execute:
        entries = store_review.entries(
            execute, where(clauses), KEYS.order_by, check_limit(limit) + 1
        )
    return KEYS.page(entries, limit, lambda e: (e.created_at, e.dead_letter_id), reviewed)


def mark_reviewed(store: Store, dead_letter_id: str, *, by: str, note: str = "") -> ActionResult:
    who, now, note = required(by, "by"), time.time(), operator_text(note)
    with store.transaction() as execute:
        job_id = store_review.mark(execute, dead_letter_id, at=now, by=who, note=note)
        if job_id is None:
            known = store_review.exists(execute, dead_letter_id)
            outcome = Outcome.ALREADY_REVIEWED if known else Outcome.NOT_FOUND
            return ActionResult(dead_letter_id, outcome, f"{dead_letter_id}: {outcome.value}")
        audit.record(
            execute,
            at=now,
            actor=who,
            action=AuditAction.REVIEW,
            target=dead_letter_id,
            reason=note,
            details={"job_id": job_id},
        )
    return ActionResult(dead_letter_id, Outcome.REVIEWED, f"{dead_letter_id} is reviewed")
