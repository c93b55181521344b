"""The audit log: who requeued, abandoned, edited, exported or reviewed what, made or
revoked which API token, or paused or resumed which queue, when and why.

A record is written with `record` inside the transaction of the action it describes,
so that an action is never without its record nor a record without its action.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deadletter.model import JSONValue
from deadletter.ops.filters import Keyset, Page, check_limit, operator_text
from deadletter.redact import SECRETS_ONLY
from deadletter.store import audit as store_audit
from deadletter.store.base import Store
from deadletter.store.failures import Execute
from deadletter.store.query import Clause, where
from deadletter.store.rows import load_object


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
    CANCEL = "cancel"
    RECLASSIFY = "reclassify"
    REHANDLE = "rehandle"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: AuditAction
    target: str
    reason: str
    # Not JSONObject: the API's schema is read from this class (api/models.py AuditPage),
    # and pydantic cannot follow that recursive alias; the details are written typed.
    details: dict[str, Any]


KEYS = Keyset("audit", *store_audit.KEYSET, int)


def record(
    execute: Execute,
    *,
    at: float,
    actor: str,
    action: AuditAction,
    target: str,
    reason: str = "",
    details: Mapping[str, JSONValue] | None = None,
) -> int:
    """Write one record in the caller's transaction; its id. The reason and the details
    are redacted of secrets, whichever action wrote them."""
    safe = SECRETS_ONLY.redact_value(details or {})
    text = json.dumps(safe, separators=(",", ":"), ensure_ascii=False)
    return store_audit.insert(
        execute,
        at=at,
        actor=actor,
        action=action.value,
        target=target,
        reason=operator_text(reason),
        details=text,
    )


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
        clauses.append(store_audit.of_target(target))
    if action is not None:
        clauses.append(store_audit.of_action(action.value))
    with store.snapshot() as execute:
        found = store_audit.entries(execute, where(clauses), KEYS.order_by, check_limit(limit) + 1)
    entries = [_entry(row) for row in found]
    return KEYS.page(entries, limit, lambda e: (e.at, e.id), [target, action])


def _entry(row: store_audit.AuditRow) -> AuditEntry:
    action, details = AuditAction(row.action), load_object(row.details)
    return AuditEntry(row.id, row.at, row.actor, action, row.target, row.reason, details)
