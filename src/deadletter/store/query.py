"""Pieces of SQL every query module shares, written once for both backends.

A `Clause` is a condition with its parameters; `where` joins clauses into a WHERE
clause; `marks` expands a list into `IN (?, ?, ...)`; `LATEST_FAILURE` says that the
failure `f` is its job's latest; `newest_first` and `after_key` are a keyset page's order
and its bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The failure `f` (a row of dlq_failures) is its job's latest: none failed after it, and
# of failures at the same instant, the one with the greatest id. Walking the
# (failed_at, dead_letter_id) index backwards finds it without reading the others.
LATEST_FAILURE = """NOT EXISTS (
    SELECT 1 FROM dlq_failures later
    WHERE later.job_id = f.job_id AND (later.failed_at > f.failed_at
        OR (later.failed_at = f.failed_at AND later.dead_letter_id > f.dead_letter_id)))"""

# A condition with its parameters, joined with AND into a WHERE clause.
Clause = tuple[str, tuple[Any, ...]]


def where(clauses: Sequence[Clause]) -> Clause:
    """`WHERE a AND b` with the parameters in order; empty when there is no clause."""
    if not clauses:
        return "", ()
    sql = "WHERE " + " AND ".join(f"({condition})" for condition, _ in clauses)
    return sql, tuple(value for _, params in clauses for value in params)


def marks(values: Sequence[object]) -> str:
    """`?, ?, ?`: one placeholder per value, for `IN (...)`."""
    return ", ".join("?" * len(values))


def equal(column: str, value: object) -> Clause:
    return f"{column} = ?", (value,)


def newest_first(time: str, key: str) -> str:
    """The keyset order of a page: newest first, ties broken by `key`, both descending
    so that one index on (time, key) read backwards serves it."""
    return f"ORDER BY {time} DESC, {key} DESC"


def after_key(time: str, key: str, at: float, last: object) -> Clause:
    """The rows after (`at`, `last`) in the order `newest_first(time, key)`; the first
    bound lets an index range serve it."""
    return f"{time} <= ? AND ({time} < ? OR {key} < ?)", (at, at, last)
