"""What operators type: durations and times, read the same way by every command."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import typer

from deadletter.cli.params import parse_duration, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 2_592_000),
        ("12h", 43_200),
        ("90m", 5_400),
        ("45s", 45),
        ("2w", 1_209_600),
        ("1h30m", 5_400),
        ("1.5h", 5_400),
        (" 0S ", 0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "d", "30x", "1h 30m", "-1d", ""])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration"):
        parse_duration(text)


def test_times_are_ago_iso_or_epoch() -> None:
    assert abs(parse_time("24h") - (time.time() - 86_400)) < 5
    assert parse_time("1728734400") == 1_728_734_400
    assert parse_time("2024-10-12T08:30") == datetime(2024, 10, 12, 8, 30).timestamp()
    assert parse_time("2024-10-12T08:30+00:00") == 1_728_721_800
    with pytest.raises(typer.BadParameter, match="is not a time"):
        parse_time("yesterday")
