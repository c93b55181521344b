"""Browser sessions: random, expiring, ended by logout, bounded in number."""

from __future__ import annotations

import pytest

from deadletter.web.sessions import Sessions


def test_a_session_lives_until_its_expiry_or_its_close() -> None:
    sessions = Sessions(ttl=60)
    opened = sessions.open("dl_secret", now=1000.0)
    assert opened.id != opened.csrf and len(opened.id) >= 43
    assert sessions.get(opened.id, now=1059.0) == opened
    assert sessions.get(opened.id, now=1060.0) is None
    again = sessions.open("dl_secret", now=2000.0)
    sessions.close(again.id)
    assert sessions.get(again.id, now=2001.0) is None
    assert sessions.get(None, now=2001.0) is None
    assert sessions.get("forged", now=2001.0) is None


def test_the_oldest_session_goes_first_when_too_many_are_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("deadletter.web.sessions.MAX_SESSIONS", 2)
    sessions = Sessions(ttl=60)
    first, second, third = (sessions.open(None, now=float(n)) for n in range(3))
    assert sessions.get(first.id, now=3.0) is None
    assert sessions.get(second.id, now=3.0) == second
    assert sessions.get(third.id, now=3.0) == third


def test_what_is_put_once_is_taken_once_and_goes_with_its_session() -> None:
    sessions = Sessions(ttl=60)
    opened = sessions.open(None, now=0.0)
    sessions.put_once(opened.id, "dl_new")
    assert sessions.take_once(opened.id) == "dl_new"
    assert sessions.take_once(opened.id) is None
    sessions.put_once(opened.id, "dl_other")
    sessions.close(opened.id)
    assert sessions.take_once(opened.id) is None
