"""Each backend's driver errors that mean "the database is away, not now" are told
apart from those that are a statement's own fault (issue 9): the former become
StoreUnavailable, which workers wait out, the latter stay errors."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from deadletter.store.postgres import _server_away, _unavailable_message
from deadletter.store.sqlite import _unavailable


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("database is locked", "is locked by another connection"),
        ("database or disk is full", "is on a full disk"),
        ("disk I/O error", "cannot be read or written (disk I/O error)"),
        ("unable to open database file", "cannot be opened"),
        ("no such table: queue_jobs", None),
        ('near "SELEC": syntax error', None),
    ],
)
def test_sqlite_errors_that_mean_unavailable(message: str, reason: str | None) -> None:
    assert _unavailable(sqlite3.OperationalError(message)) == reason


@pytest.mark.parametrize(
    ("sqlstate", "away"),
    [
        (None, True),  # a broken socket, a pool that cannot connect
        ("08006", True),  # connection failure
        ("57P01", True),  # terminating connection due to administrator command
        ("57P03", True),  # the database system is starting up
        ("40P01", False),  # deadlock detected: the statement's, not the server's
        ("55P03", False),  # lock not available
    ],
)
def test_postgresql_errors_that_mean_the_server_is_away(sqlstate: str | None, away: bool) -> None:
    kind = psycopg.OperationalError if sqlstate is None else psycopg.errors.lookup(sqlstate)
    error = kind("failed")
    assert isinstance(error, psycopg.OperationalError)
    assert _server_away(error) is away


@pytest.mark.parametrize(
    ("sqlstate", "says"),
    [
        ("40P01", "rolled back a transaction that conflicted with another"),
        ("40001", "rolled back a transaction that conflicted with another"),
        ("40003", "Check that the server is running"),  # may have been written
        ("08006", "Check that the server is running"),
        ("57P01", "Check that the server is running"),
    ],
)
def test_postgresql_unavailable_says_what_happened(sqlstate: str, says: str) -> None:
    error = psycopg.errors.lookup(sqlstate)("failed")
    assert isinstance(error, psycopg.OperationalError)
    assert says in _unavailable_message("db.example.com:5432/app", error)
