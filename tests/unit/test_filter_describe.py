"""A filter described for people: times as UTC dates, whatever number they were given."""

from __future__ import annotations

from deadletter.ops.filters import FailureFilter


def test_times_read_as_utc_dates() -> None:
    described = FailureFilter(queue="q", since=1_700_000_000, until=1_700_003_600).describe()
    assert described == "queue=q since=2023-11-14T22:13:20Z until=2023-11-14T23:13:20Z"


def test_a_time_no_calendar_holds_stays_a_number() -> None:
    # An API caller may send any number (schemathesis did): describing it must not fail.
    assert FailureFilter(since=-1e18, until=1e300).describe() == "since=-1e+18 until=1e+300"
