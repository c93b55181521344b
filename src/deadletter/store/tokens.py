"""API tokens as rows, in SQL both backends share (`?` placeholders, like failures.py).

The functions take the caller's `Execute`, so that creating or revoking a token and its
audit record share one transaction (ops/tokens.py, which holds what a token means:
its scopes, its hash, when it is stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deadletter.store.failures import Execute


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A token as stored, but for its hash; `scopes` are the names, space-separated."""

    id: str
    name: str
    prefix: str
    scopes: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, revoked_at"

INSERT = f"""
INSERT INTO api_tokens (id, name, prefix, token_hash, scopes, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING {COLUMNS}
"""
BY_PREFIX = f"SELECT {COLUMNS}, token_hash FROM api_tokens WHERE prefix = ?"
ALL = f"SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
TOUCH = """
UPDATE api_tokens SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)
"""
# The first revocation's time is kept: revoking twice changes nothing.
REVOKE = f"""
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?)
WHERE id = ? OR prefix = ?
RETURNING {COLUMNS}
"""
COUNT = "SELECT count(*) FROM api_tokens"


def insert(execute: Execute, token: TokenRow, token_hash: str) -> TokenRow | None:
    """Insert a token; None when its id is taken (the row there is left alone)."""
    params = (token.id, token.name, token.prefix, token_hash, token.scopes, token.created_at)
    row = execute(INSERT, params).fetchone()
    return None if row is None else TokenRow(*row)


def by_prefix(execute: Execute, prefix: str) -> tuple[TokenRow, str] | None:
    """The token with this prefix and its stored hash, or None."""
    row = execute(BY_PREFIX, (prefix,)).fetchone()
    return None if row is None else (TokenRow(*row[:-1]), row[-1])


def all_tokens(execute: Execute) -> list[TokenRow]:
    """Every token, revoked ones included, oldest first."""
    return [TokenRow(*row) for row in execute(ALL, ()).fetchall()]


def touch(execute: Execute, token_id: str, *, now: float, stale_before: float) -> None:
    """Record a use at `now` unless one was recorded after `stale_before` (another
    request may have written it meanwhile)."""
    execute(TOUCH, (now, token_id, stale_before))


def revoke(execute: Execute, id_or_prefix: str, *, now: float) -> TokenRow | None:
    """Revoke the token with this id or prefix; None if there is none."""
    row: Any = execute(REVOKE, (now, id_or_prefix, id_or_prefix)).fetchone()
    return None if row is None else TokenRow(*row)


def count(execute: Execute) -> int:
    """How many tokens were ever made, revoked ones included."""
    return int(execute(COUNT, ()).fetchone()[0])
