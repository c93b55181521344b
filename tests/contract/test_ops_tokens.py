"""API tokens over every backend: stored hashed, scoped, revocable."""

from __future__ import annotations

import time

import pytest

from deadletter.ops import tokens
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.tokens import Scope
from deadletter.store.base import Store

NOW = 1_700_000_000.0


def every_stored_value(store: Store) -> str:
    with store.snapshot() as execute:
        return repr([tuple(row) for row in execute("SELECT * FROM api_tokens", ()).fetchall()])


def test_a_token_verifies_and_only_its_hash_is_stored(store: Store) -> None:
    token, plaintext = tokens.create(store, "ci", ["operate"], now=NOW, actor="test")
    assert plaintext.startswith("dl_") and len(plaintext) == 46
    found = tokens.verify(store, plaintext, now=NOW)
    assert found is not None and found.id == token.id and found.name == "ci"
    assert found.scopes == {Scope.OPERATE}
    stored = every_stored_value(store)
    assert plaintext not in stored and plaintext[11:] not in stored
    assert plaintext[:11] == token.prefix and token.prefix in stored


def test_wrong_malformed_and_revoked_tokens_fail(store: Store) -> None:
    token, plaintext = tokens.create(store, "ci", ["read"], now=NOW, actor="test")
    other_char = "A" if plaintext[-1] != "A" else "B"
    for wrong in (plaintext[:-1] + other_char, plaintext[:-1], "", "Bearer " + plaintext):
        assert tokens.verify(store, wrong, now=NOW) is None
    revoked = tokens.revoke(store, token.prefix, now=NOW + 5, actor="test")
    assert revoked is not None and revoked.revoked_at == NOW + 5
    assert tokens.verify(store, plaintext, now=NOW + 6) is None
    # a second revocation keeps the first one's time; an unknown token is None
    again = tokens.revoke(store, token.id, now=NOW + 9, actor="test")
    assert again is not None and again.revoked_at == NOW + 5
    assert tokens.revoke(store, "dl_nothing1", now=NOW, actor="test") is None


def test_scopes_include_the_lesser_ones(store: Store) -> None:
    admin, _ = tokens.create(store, "root", ["admin"], now=NOW, actor="test")
    reader, _ = tokens.create(store, "dash", ["read"], now=NOW, actor="test")
    assert all(admin.allows(scope) for scope in Scope)
    assert reader.allows(Scope.READ)
    assert not reader.allows(Scope.OPERATE) and not reader.allows(Scope.ADMIN)
    with pytest.raises(ValueError):
        tokens.create(store, "typo", ["reed"], now=NOW, actor="test")
    with pytest.raises(ValueError):
        tokens.create(store, "none", [], now=NOW, actor="test")


def test_last_use_is_written_at_most_once_a_minute(store: Store) -> None:
    _, plaintext = tokens.create(store, "ci", ["read"], now=NOW, actor="test")

    def last_used() -> float | None:
        [token] = tokens.list_tokens(store)
        return token.last_used_at

    assert last_used() is None
    tokens.verify(store, plaintext, now=NOW + 1)
    assert last_used() == NOW + 1
    tokens.verify(store, plaintext, now=NOW + 60)
    assert last_used() == NOW + 1
    tokens.verify(store, plaintext, now=NOW + 61)
    assert last_used() == NOW + 61


def test_list_shows_every_token_without_secrets(store: Store) -> None:
    first, _ = tokens.create(store, "a", ["read"], now=NOW, actor="test")
    tokens.create(store, "b", ["admin", "read"], now=NOW + 1, actor="test")
    tokens.revoke(store, first.id, now=NOW + 2, actor="test")
    listed = tokens.list_tokens(store)
    assert [(t.name, t.revoked_at) for t in listed] == [("a", NOW + 2), ("b", None)]
    assert listed[1].scopes == {Scope.ADMIN, Scope.READ}


def test_serve_creates_an_admin_token_only_when_none_ever_existed(store: Store) -> None:
    now = time.time()
    created = tokens.ensure_admin_token(store, now=now)
    assert created is not None
    token, plaintext = created
    assert token.scopes == {Scope.ADMIN}
    assert tokens.verify(store, plaintext, now=now) is not None
    assert tokens.ensure_admin_token(store, now=now) is None
    tokens.revoke(store, token.id, now=now, actor="test")
    # Every token revoked: a restart must not mint a new admin token for whoever
    # reads the server's output.
    assert tokens.ensure_admin_token(store, now=now) is None
    assert len(tokens.list_tokens(store)) == 1
    [made] = audit_entries(store, action=AuditAction.TOKEN_CREATE).items
    assert (made.actor, made.target, made.details) == (
        "serve",
        token.id,
        {"name": tokens.BOOTSTRAP_NAME, "scope": "admin"},
    )
