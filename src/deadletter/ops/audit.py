"""The audit log: who requeued, abandoned, edited, exported or reviewed what, made or
revoked which API token, or paused or resumed which queue, when and why.

A record is written with `record` inside the transaction of the action it describes,
so that an action is never without its record nor a record without its action.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deadletter.ops.filters import Clause, Keyset, Page, check_limit, operator_text, where
from deadletter.redact import SECRETS_ONLY
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.rows import loads


class AuditAction(StrEnum):
    REQUEUE = "requeue"
    ABANDON = "abandon"
    EDIT = "edit"
    BULK_REQUEUE = "bulk_requeue"
    BULK_ABANDON = "bulk_abandon"
    BULK_STOPPED = "bulk_stopped"
    EXPORT = "export"
    REVIEW = "review"
    TOKEN_CREATE = "token_create"
    TOKEN_REVOKE = "token_revoke"
    QUEUE_PAUSE = "queue_pause"
    QUEUE_RESUME = "queue_resume"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: AuditAction
    target: str
    reason: str
    details: dict[str, Any]


INSERT = """
INSERT INTO audit_log (at, actor, action, target, reason, details)
VALUES (?, ?, ?, ?, ?, ?)
RETURNING id
"""

SELECT = "SELECT id, at, actor, action, target, reason, details FROM audit_log"
KEYS = Keyset("audit", "at", "id", int)


def record(
    execute: Execute,
    *,
    at: float,
    actor: str,
    action: AuditAction,
    target: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Write one record in the caller's transaction; its id. The reason and the details
    are redacted of secrets, whichever action wrote them."""
    safe = SECRETS_ONLY.redact_value(details or {})
    text = json.dumps(safe, separators=(",", ":"), ensure_ascii=False)
    params = (at, actor, action.value, target, operator_text(reason), text)
    row = execute(INSERT, params).fetchone()
    return int(row[0])


def audit_entries(
    store: Store,
    *,
    target: str | None = None,
    action: AuditAction | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[AuditEntry]:
    """Records, newest first; of one target (a job id, a dead letter id) or action."""
    clauses: list[Clause] = [*KEYS.after(cursor, [target, action])]
    if target is not None:
        clauses.append(("target = ?", (target,)))
    if action is not None:
        clauses.append(("action = ?", (action.value,)))
    condition, params = where(clauses)
    sql = f"{SELECT} {condition} {KEYS.order_by} LIMIT ?"
    with store.snapshot() as execute:
        rows = execute(sql, (*params, check_limit(limit) + 1)).fetchall()
    entries = [_entry(row) for row in rows]
    return KEYS.page(entries, limit, lambda e: (e.at, e.id), [target, action])


def _entry(row: Any) -> AuditEntry:
    id_, at, actor, action, target, reason, details = row
    return AuditEntry(int(id_), at, actor, AuditAction(action), target, reason, loads(details))
