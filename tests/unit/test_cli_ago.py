"""`ago`: how long ago, in the largest whole unit, for a narrow table column."""

from __future__ import annotations

import time

from deadletter.cli.views import ago


def test_ago_takes_the_largest_whole_unit() -> None:
    now = time.time()
    assert ago(now - 3 * 86_400 - 7200) == "3d ago"
    assert ago(now - 86_400) == "1d ago"
    assert ago(now - 5 * 3600 - 59) == "5h ago"
    assert ago(now - 125) == "2m ago"
    assert ago(now - 59.5) == "59s ago"


def test_a_time_ahead_of_the_clock_is_now() -> None:
    assert ago(time.time() + 60) == "0s ago"
