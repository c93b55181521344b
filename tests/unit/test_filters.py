"""A filter describes itself for people and the audit log, whatever its values."""

from __future__ import annotations

from deadletter.ops.filters import FailureFilter


def test_times_are_described_in_utc() -> None:
    described = FailureFilter(queue="a", since=1_728_721_800.0).describe()
    assert described == "queue=a since=2024-10-12T08:30:00Z"


def test_a_time_no_calendar_holds_is_described_in_epoch_seconds() -> None:
    assert FailureFilter(since=-4.1e16, until=1e20).describe() == "since=-4.1e+16 until=1e+20"


def test_task_rule_and_labels_are_part_of_the_filter() -> None:
    chosen = FailureFilter(task="t", rule="r", labels=(("site_name", "berlin"),))
    assert chosen.to_json() == {"task": "t", "rule": "r", "labels": {"site_name": "berlin"}}
    assert [params for _, params in chosen.clauses()] == [("t",), ("r",), ("site_name", "berlin")]
