"""How the dashboard writes a length of time: in the unit a person reads at a glance."""

from __future__ import annotations

import math

import pytest

from deadletter.web.render import duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "none"),
        (math.nan, "none"),
        (0.25, "250 ms"),
        (1.0, "1.0 s"),
        (119.9, "119.9 s"),
        (120.0, "2 min"),
        (7199.0, "120 min"),
        (7200.0, "2.0 h"),
        (90_000.0, "25.0 h"),
    ],
)
def test_duration_picks_its_unit(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown
