"""API tokens with scopes, stored hashed: who may read, operate on and administer failures.

A token is `dl_` and 43 URL-safe characters (256 random bits), shown once when it is
created. The database keeps a SHA-256 of it, and its first 11 characters (the prefix,
not secret) to find the row and to name the token in lists. A slow password hash
(bcrypt, argon2) protects low-entropy secrets whose hash leaked against guessing; a
256-bit random token cannot be guessed from its hash at any speed, so a fast hash loses
nothing and keeps checking a token cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from deadletter.errors import InternalError, InvalidArgument
from deadletter.ops.audit import AuditAction, record
from deadletter.store import tokens as store_tokens
from deadletter.store.base import Store
from deadletter.store.failures import Execute

TOKEN_MARK = "dl_"
PREFIX_LENGTH = len(TOKEN_MARK) + 8
TOKEN_PATTERN = re.compile(r"dl_[A-Za-z0-9_-]{43}")
# How stale last_used_at may grow: a write per request would make every read a write.
TOUCH_SECONDS = 60.0
BOOTSTRAP_NAME = "admin (created by serve)"


class Scope(StrEnum):
    """What a token may do; each scope includes the ones before it."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)


@dataclass(frozen=True, slots=True)
class Token:
    """A token as stored: everything but the secret."""

    id: str
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    def allows(self, needed: Scope) -> bool:
        """Whether this token may act where `needed` is required (admin implies operate,
        operate implies read)."""
        return any(scope.rank >= needed.rank for scope in self.scopes)


def create(
    store: Store, name: str, scopes: Iterable[str], *, now: float, actor: str, reason: str = ""
) -> tuple[Token, str]:
    """A new token and its plaintext, which exists nowhere else: show it once. The audit
    log records who made it, in the same transaction."""
    with store.transaction() as execute:
        created = _insert(execute, secrets.token_hex(8), name, parse_scopes(scopes), now)
        if created is None:
            raise InternalError("a random 64-bit token id collided; create it again")
        _audit(execute, AuditAction.TOKEN_CREATE, created[0], now=now, actor=actor, reason=reason)
    return created


def verify(store: Store, plaintext: str, *, now: float) -> Token | None:
    """The live token `plaintext` is, or None (malformed, unknown, wrong or revoked)."""
    if not TOKEN_PATTERN.fullmatch(plaintext):
        return None
    with store.snapshot() as execute:
        found = store_tokens.by_prefix(execute, plaintext[:PREFIX_LENGTH])
    # The prefix is public, so finding the row by it reveals nothing; the secret part is
    # only ever compared in constant time, through its hash.
    if found is None or not hmac.compare_digest(found[1], _hash(plaintext)):
        return None
    token = _token(found[0])
    if token.revoked_at is not None:
        return None
    if token.last_used_at is None or token.last_used_at <= now - TOUCH_SECONDS:
        with store.transaction() as execute:
            store_tokens.touch(execute, token.id, now=now, stale_before=now - TOUCH_SECONDS)
        token = replace(token, last_used_at=now)
    return token


def list_tokens(store: Store) -> list[Token]:
    """Every token, revoked ones included, oldest first."""
    with store.snapshot() as execute:
        return [_token(row) for row in store_tokens.all_tokens(execute)]


def revoke(
    store: Store, id_or_prefix: str, *, now: float, actor: str, reason: str = ""
) -> Token | None:
    """Revoke the token with this id or prefix, and record who did; None if there is none."""
    with store.transaction() as execute:
        row = store_tokens.revoke(execute, id_or_prefix, now=now)
        if row is None:
            return None
        token = _token(row)
        _audit(execute, AuditAction.TOKEN_REVOKE, token, now=now, actor=actor, reason=reason)
    return token


def ensure_admin_token(store: Store, *, now: float) -> tuple[Token, str] | None:
    """For `serve`: an admin token and its plaintext if no token has ever existed, else
    None. Once tokens were made, revoking them all must not let a restart mint a new
    admin token: `deadletter token create` makes the next one, on the server's machine.

    The id is fixed, so that servers starting together on one database create one
    token between them, not one each."""
    with store.transaction() as execute:
        if store_tokens.count(execute):
            return None
        created = _insert(execute, "initial-0", BOOTSTRAP_NAME, {Scope.ADMIN}, now)
        if created is not None:
            _audit(execute, AuditAction.TOKEN_CREATE, created[0], now=now, actor="serve")
        return created


def parse_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; ValueError for an unknown one or for none at all."""
    parsed = frozenset(Scope(scope) for scope in scopes)
    if not parsed:
        raise InvalidArgument(f"a token needs a scope: one of {', '.join(Scope)}")
    return parsed


def _insert(
    execute: Execute, token_id: str, name: str, scopes: Iterable[Scope], now: float
) -> tuple[Token, str] | None:
    plaintext = TOKEN_MARK + secrets.token_urlsafe(32)
    ordered: list[Scope] = sorted(scopes, key=lambda scope: scope.rank)
    stored = " ".join(ordered)
    prefix = plaintext[:PREFIX_LENGTH]
    wanted = store_tokens.TokenRow(token_id, name, prefix, stored, now, None, None)
    row = store_tokens.insert(execute, wanted, _hash(plaintext))
    return None if row is None else (_token(row), plaintext)


def _audit(
    execute: Execute, action: AuditAction, token: Token, *, now: float, actor: str, reason: str = ""
) -> None:
    scope = max(token.scopes, key=lambda s: s.rank)
    details = {"name": token.name, "scope": scope.value}
    record(
        execute, at=now, actor=actor, action=action, target=token.id, reason=reason, details=details
    )


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _token(row: store_tokens.TokenRow) -> Token:
    return Token(
        row.id,
        row.name,
        row.prefix,
        frozenset(Scope(scope) for scope in row.scopes.split()),
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )
