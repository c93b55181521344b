"""The audit log as rows, in SQL both backends share (`?` placeholders, like failures.py).

`insert` takes the caller's `Execute`: a record is written in the transaction of the
action it describes (ops/audit.py holds what is recorded and how it is redacted).
"""

from __future__ import annotations

from dataclasses import dataclass

from deadletter.store.failures import Execute
from deadletter.store.query import Clause, equal

# The audit log's keyset order: newest record first, then by id (an integer).
KEYSET = ("at", "id")


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A record as stored; `details` is its JSON text."""

    id: int
    at: float
    actor: str
    action: str
    target: str
    reason: str
    details: str


INSERT = """
INSERT INTO audit_log (at, actor, action, target, reason, details)
VALUES (?, ?, ?, ?, ?, ?)
RETURNING id
"""
SELECT = "SELECT id, at, actor, action, target, reason, details FROM audit_log"


def insert(
    execute: Execute, *, at: float, actor: str, action: str, target: str, reason: str, details: str
) -> int:
    """Write one record; its id."""
    row = execute(INSERT, (at, actor, action, target, reason, details)).fetchone()
    return int(row[0])


def of_target(target: str) -> Clause:
    return equal("target", target)


def of_action(action: str) -> Clause:
    return equal("action", action)


def entries(execute: Execute, condition: Clause, order_by: str, limit: int) -> list[AuditRow]:
    """Up to `limit` records that meet `condition` (a WHERE clause), in `order_by`."""
    where, params = condition
    rows = execute(f"{SELECT} {where} {order_by} LIMIT ?", (*params, limit)).fetchall()
    return [AuditRow(int(row[0]), *row[1:]) for row in rows]
