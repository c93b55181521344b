"""Hand parked dead letters back to the DLQ handler: by id or by filter, with a dry run.

A letter is parked for a fault of its own (dlq/handler.py); once that is fixed, an
operator hands it back. One transaction counts and reads the parked letters, and queues
each again on its DLQ with a fresh retry budget (its attempts carry on), removes its
parked row and writes one audit record. The handler then handles it as any letter:
its steps are keyed by the dead letter, so a failure, notification or alert recorded
for it is not recorded twice, and a letter parked again raises no second `parked`
alert (the alert's id is the letter's). A letter, dead letter or job named that has no
parked letter is refused, with what it is instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from deadletter.errors import InvalidRequest
from deadletter.model import JSONObject, is_parked_queue
from deadletter.ops import audit
from deadletter.ops.bulk import checked_clauses
from deadletter.ops.cancel import Refusal
from deadletter.ops.filters import MAX_JOB_IDS, FailureFilter, check_limit, operator_text, required
from deadletter.ops.recovery import Policy
from deadletter.store import parked as store_parked
from deadletter.store.base import DEAD_LETTER_TASK, Store
from deadletter.store.failures import Execute
from deadletter.store.parked import ParkedLetter as ParkedLetter
from deadletter.store.query import Clause

# What a parked letter is not yet: classified, and so grouped.
UNCLASSIFIED = ("error_class", "rule", "fingerprint")


@dataclass(frozen=True, slots=True)
class Rehandling:
    """`count` parked letters match; `letters` are those handed back (on a dry run, that
    would be), at most the limit, the oldest failures first; `refused` the ids named
    that have no parked letter."""

    dry_run: bool
    count: int
    letters: list[ParkedLetter]
    refused: list[Refusal]


def rehandle(
    store: Store,
    *,
    ids: list[str],
    failure_filter: FailureFilter,
    all: bool = False,
    actor: str,
    reason: str,
    policy: Policy,
    dry_run: bool = False,
    limit: int = 1000,
) -> Rehandling:
    """Hand back the parked letters named by `ids` (a parked row's, a letter's or a
    job's id) and matching `failure_filter`; on a dry run, say which without changing
    anything. With no id, an empty filter is refused unless `all`."""
    clauses = _clauses(ids, failure_filter, all)
    who = required(actor, "actor")
    why = "" if dry_run else operator_text(required(reason, "reason"))
    with store.transaction() as execute:
        count = store_parked.count_parked(execute, clauses)
        found = store_parked.parked(execute, clauses, check_limit(limit))
        letters = found if dry_run else _hand_back(execute, found, who, why, policy)
        return Rehandling(dry_run, count, letters, _refusals(execute, ids, letters))


def _clauses(ids: list[str], failure_filter: FailureFilter, all: bool) -> list[Clause]:
    if len(ids) > MAX_JOB_IDS:
        raise InvalidRequest("ids", f"at most {MAX_JOB_IDS} ids at once")
    for name in UNCLASSIFIED:
        if getattr(failure_filter, name):
            raise InvalidRequest(name, "a parked letter is not classified yet: filter otherwise")
    if not ids:
        return checked_clauses(failure_filter, all=all, matches="every parked letter")
    return [store_parked.with_ids(ids), *failure_filter.clauses()]


def _hand_back(
    execute: Execute, found: list[ParkedLetter], actor: str, reason: str, policy: Policy
) -> list[ParkedLetter]:
    now = time.time()
    done = []
    for letter in found:
        retries = policy(letter.dead_letter_queue).max_retries
        if store_parked.rehandle(execute, letter, retries=retries, at=now):
            _audit(execute, letter, actor, reason, now, retries)
            done.append(letter)
    return done


def _audit(
    execute: Execute, letter: ParkedLetter, actor: str, reason: str, at: float, retries: int
) -> None:
    details: JSONObject = {
        "dead_letter_id": letter.dead_letter_id,
        "parked_id": letter.parked_id,
        "dead_letter_queue": letter.dead_letter_queue,
        "attempts": letter.attempts,
        "retries": retries,
    }
    audit.record(
        execute,
        at=at,
        actor=actor,
        action=audit.AuditAction.REHANDLE,
        target=letter.job_id,
        reason=reason,
        details=details,
    )


def _refusals(execute: Execute, ids: list[str], letters: list[ParkedLetter]) -> list[Refusal]:
    done = {
        i for letter in letters for i in (letter.parked_id, letter.dead_letter_id, letter.job_id)
    }
    return [_refusal(execute, i) for i in dict.fromkeys(ids) if i not in done]


def _refusal(execute: Execute, named: str) -> Refusal:
    found = store_parked.kind(execute, named)
    if found is None:
        return Refusal(named, f"no parked letter, dead letter or job {named}")
    task, status, queue = found
    if task != DEAD_LETTER_TASK:
        return Refusal(named, f"job {named} has no parked dead letter (the job is {status})")
    if is_parked_queue(queue):
        return Refusal(named, f"parked letter {named} is not handed back: over the limit")
    return Refusal(named, f"dead letter {named} is not parked: it is {status} on {queue}")
