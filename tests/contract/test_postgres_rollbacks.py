"""A transaction that PostgreSQL rolls back (a deadlock) is told as such: not as the
server being away, which would send an operator to check a server that is fine."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from deadletter.errors import StoreUnavailable
from deadletter.store import open_store


def test_a_deadlock_is_told_as_a_rolled_back_transaction(postgres_url: str) -> None:
    store = open_store(postgres_url)
    with psycopg.connect(postgres_url) as other:
        other.execute("CREATE TABLE locks (id int PRIMARY KEY)")
        other.execute("INSERT INTO locks VALUES (1), (2)")
        other.commit()
        other.execute("SELECT id FROM locks WHERE id = 1 FOR UPDATE")

        def lock_two() -> None:
            # After the store waits for row 1, so that the store's wait is the longer:
            # PostgreSQL ends the deadlock in the first to wait out `deadlock_timeout`.
            time.sleep(0.3)
            other.execute("SELECT id FROM locks WHERE id = 2 FOR UPDATE")

        locker = threading.Thread(target=lock_two)
        with pytest.raises(StoreUnavailable) as raised, store.transaction() as execute:
            execute("SELECT id FROM locks WHERE id = 2 FOR UPDATE", ())
            locker.start()
            execute("SELECT id FROM locks WHERE id = 1 FOR UPDATE", ())
        locker.join()
        other.rollback()
    store.close()

    message = str(raised.value)
    assert "rolled back a transaction that conflicted with another" in message
    assert "deadlock detected" in message
    assert "Check that the server is running" not in message
