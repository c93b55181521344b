"""A filter describes itself for people and the audit log, whatever its values."""

from __future__ import annotations

from typing import Any

import pytest

from deadletter.errors import InvalidRequest
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


@pytest.mark.parametrize(
    "fields",
    [
        {"since": True},
        {"until": False},
        {"since": "1700000000"},
        {"since": float("inf")},
        {"until": float("nan")},
        {"queue": 3},
        {"text": b"x"},
        {"job_ids": (1,)},
    ],
)
def test_a_filter_field_of_the_wrong_type_is_refused(fields: dict[str, Any]) -> None:
    # `since: true` taken for 1.0 matched every failure, past the rule that an empty
    # filter needs `all`.
    with pytest.raises(InvalidRequest):
        FailureFilter(**fields)
