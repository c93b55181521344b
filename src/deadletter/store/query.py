"""Pieces of SQL every query module shares, written once for both backends.

A `Clause` is a condition with its parameters; `where` joins clauses into a WHERE
clause; `marks` expands a list into `IN (?, ?, ...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
