"""Re-classify recorded failures after the rules changed, with a dry run.

The current failures (the latest of each failed job that is not abandoned) are
classified again by the handler's current rules (the face hands in the app's
DeadLetterHandler as a `Regrader`: ops does not know the rules). A failure whose class
changed is moved, in one transaction with one audit record each: its class and rule
are rewritten, it leaves the recovery queue if it was pending there and its new route
is another, and it is routed as a new failure of its class would be. Each route is
keyed by the dead letter, as when it was handled: a notification or an alert already
raised for it is not raised again, however often `reclassify` runs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from deadletter.model import FailureRecord, RecordedFailure
from deadletter.ops import audit
from deadletter.ops.filters import operator_text, required
from deadletter.store import reclassify as store_reclassify
from deadletter.store.base import Store
from deadletter.store.failures import Execute, route_again


class Regrader(Protocol):
    """What re-classifying needs of the dead-letter handler (dlq/handler.py, which ops
    may not import): its current rules, and the window in which an alert folds."""

    alert_window: float

    def regrade(self, failure: RecordedFailure) -> FailureRecord | None: ...


# Failures read per statement: a large DLQ is walked in pages, by dead letter id.
PAGE = 500


@dataclass(frozen=True, slots=True)
class Move:
    """One failure whose class changed: from what, to what, by which rule, where to."""

    dead_letter_id: str
    job_id: str
    was: str
    now: str
    rule: str
    route: str


@dataclass(frozen=True, slots=True)
class Reclassification:
    """The failures moved (or, on a dry run, that would be), and how many per change."""

    dry_run: bool
    examined: int
    moves: list[Move]
    counts: dict[str, int]  # moves by change, as "OLD->NEW", most first


def reclassify(
    store: Store, handler: Regrader, *, actor: str, reason: str, dry_run: bool = False
) -> Reclassification:
    """Classify the current failures again; move those whose class changed (not on a
    dry run). A failure moved meanwhile by another run is left to it."""
    who = required(actor, "actor")
    why = operator_text(required(reason, "reason"))
    examined, moves = 0, list[Move]()
    with store.transaction() as execute:
        after = ""
        while page := store_reclassify.current_failures(execute, after=after, limit=PAGE):
            examined += len(page)
            after = page[-1].dead_letter_id
            changed = [(f, r) for f in page if (r := handler.regrade(f)) is not None]
            if not dry_run:
                changed = _move(execute, changed, who, why, handler.alert_window)
            moves.extend(_as_move(failure, record) for failure, record in changed)
    counts = Counter(f"{m.was}->{m.now}" for m in moves).most_common()
    return Reclassification(dry_run, examined, moves, dict(counts))


def _move(
    execute: Execute,
    changed: list[tuple[RecordedFailure, FailureRecord]],
    actor: str,
    reason: str,
    alert_window: float,
) -> list[tuple[RecordedFailure, FailureRecord]]:
    now = time.time()
    moved = [
        (failure, record)
        for failure, record in changed
        if store_reclassify.set_class(
            execute,
            failure.dead_letter_id,
            was=failure.error_class,
            now=record.error_class,
            rule=record.rule,
        )
    ]
    for failure, record in moved:
        if not record.recovery:
            store_reclassify.drop_pending_recovery(execute, failure.job_id)
        details = {
            "dead_letter_id": failure.dead_letter_id,
            "from": failure.error_class.value,
            "to": record.error_class.value,
            "rule": record.rule,
            "route": record.route.value,
        }
        audit.record(
            execute,
            at=now,
            actor=actor,
            action=audit.AuditAction.RECLASSIFY,
            target=failure.job_id,
            reason=reason,
            details=details,
        )
    route_again(execute, [record for _, record in moved], now=now, alert_window=alert_window)
    return moved


def _as_move(failure: RecordedFailure, record: FailureRecord) -> Move:
    return Move(
        dead_letter_id=failure.dead_letter_id,
        job_id=failure.job_id,
        was=failure.error_class.value,
        now=record.error_class.value,
        rule=record.rule,
        route=record.route.value,
    )
