"""What `/metrics` and `/healthz` read, in SQL both backends share (see failures.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deadletter.store.failures import Execute

DEAD_LETTERS_BY_CLASS = (
    "SELECT error_class, coalesce(sum(count), 0) FROM dlq_error_groups GROUP BY error_class"
)
# One pass over the window's failures (an index range on failed_at): each bucket's
# cumulative count, then the count and the sum of all.
DELAYS = """
SELECT {buckets},
    count(*), coalesce(sum(handled_at - failed_at), 0)
FROM dlq_failures WHERE failed_at >= ?
"""
DELAY_BUCKET = "coalesce(sum(CASE WHEN handled_at - failed_at <= ? THEN 1 ELSE 0 END), 0)"
# A table of the schema, not `SELECT 1`: a SQLite file replaced by an empty one answers
# `SELECT 1` but holds no jobs.
PROBE = "SELECT 1 FROM queue_jobs LIMIT 1"


@dataclass(frozen=True, slots=True)
class Delays:
    """How long the handler took to record failures (`handled_at - failed_at`):
    `cumulative[i]` of them within `bounds[i]` seconds, `count` in all, `total` seconds."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


def dead_letters_by_class(execute: Execute) -> dict[str, int]:
    """Failures handled since the database was created, by the class of their group."""
    rows = execute(DEAD_LETTERS_BY_CLASS, ()).fetchall()
    return {str(error_class): int(count) for error_class, count in rows}


def handling_delays(execute: Execute, bounds: Sequence[float], *, since: float) -> Delays:
    """The handling delays of the failures recorded since `since`, in buckets."""
    sql = DELAYS.format(buckets=", ".join([DELAY_BUCKET] * len(bounds)))
    *cumulative, count, total = execute(sql, (*bounds, since)).fetchone()
    return Delays(tuple(bounds), tuple(int(n) for n in cumulative), int(count), float(total))


def probe(execute: Execute) -> None:
    """Read the schema once: raises when the database or its tables cannot be reached."""
    execute(PROBE, ()).fetchall()
