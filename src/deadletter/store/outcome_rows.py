"""Outcomes as the rows both SQL backends write: one UPDATE for a whole batch.

Every outcome kind becomes the same tuple of column values, so that a batch is one
statement (PostgreSQL: arrays expanded by `unnest`; SQLite: a VALUES list) rather
than one statement per job, each fenced by the job's lease token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deadletter.model import JobState
from deadletter.store.base import DeadLettered, JobOutcome, Retrying, Succeeded
from deadletter.store.rows import last_error


def unique(outcomes: Sequence[JobOutcome]) -> list[JobOutcome]:
    """The first outcome per lease: applied in order, a repeat would be fenced out anyway.
    In one set-based UPDATE a repeat would instead race its twin for the row."""
    first: dict[tuple[str, int], JobOutcome] = {}
    for outcome in outcomes:
        first.setdefault((outcome.lease.job_id, outcome.lease.token), outcome)
    return list(first.values())


def change(outcome: JobOutcome, now: float) -> tuple[Any, ...]:
    """(id, token, status, run_at, completed_at, last_error); None keeps the column."""
    key = (outcome.lease.job_id, outcome.lease.token)
    if isinstance(outcome, Succeeded):
        return (*key, JobState.SUCCEEDED.value, None, outcome.finished_at, None)
    error = last_error(outcome.attempt)
    if isinstance(outcome, Retrying):
        return (*key, JobState.RETRYING.value, outcome.run_at, None, error)
    return (*key, JobState.DEAD_LETTERED.value, None, now, error)


def failed(outcomes: Sequence[JobOutcome], applied: set[str]) -> list[Retrying | DeadLettered]:
    """The applied outcomes that record a failed attempt."""
    return [o for o in outcomes if not isinstance(o, Succeeded) and o.lease.job_id in applied]
