"""A dead letter read back is what `dead_letter_payload` wrote, typed (model.DeadLetter)."""

from __future__ import annotations

import json

from deadletter.model import Attempt, DeadLetter, ErrorClass, LastFailure
from deadletter.store.base import dead_letter_payload

JOB = {
    "id": "j1",
    "queue": "charts",
    "task": "charts.render",
    "payload": json.dumps({"args": [1], "kwargs": {}}),
    "labels": json.dumps({"user": "u-7"}),
    "created_at": 100.0,
}


def attempt(number: int, **error: object) -> Attempt:
    return Attempt("j1", number, 100.0 + number, 101.0 + number, "w", **error)  # type: ignore[arg-type]


def test_a_letter_reads_back_as_it_was_written() -> None:
    history = [
        attempt(1, error_type="TimeoutError", message="slow"),
        attempt(
            2,
            error_type="httpx.HTTPStatusError",
            message="404 Not Found",
            traceback="Traceback ...",
            http_status=404,
            error_class=ErrorClass.USER_ERROR,
            rule="http-4xx",
        ),
    ]
    body = json.loads(json.dumps(dead_letter_payload(JOB, history, "poison: lost", poison=True)))

    assert DeadLetter.from_json(body) == DeadLetter(
        job_id="j1",
        queue="charts",
        task="charts.render",
        labels={"user": "u-7"},
        created_at=100.0,
        reason="poison: lost",
        poison=True,
        last=LastFailure(
            number=2,
            ended_at=103.0,
            error_type="httpx.HTTPStatusError",
            message="404 Not Found",
            traceback="Traceback ...",
            http_status=404,
            error_class="USER_ERROR",
            rule="http-4xx",
        ),
    )


def test_a_letter_without_history_or_flags_has_an_empty_last_failure() -> None:
    body = {"job_id": "j1", "queue": "charts", "task": "charts.render", "attempts": []}

    letter = DeadLetter.from_json(body)

    assert (letter.last, letter.poison, letter.reason, letter.labels) == (
        LastFailure(),
        False,
        "",
        {},
    )
    assert letter.created_at is None
