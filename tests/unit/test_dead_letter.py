"""A dead letter read back is what `dead_letter_payload` wrote, typed (model.DeadLetter)."""

from __future__ import annotations

import json

from deadletter.model import WORKER_LOST, Attempt, DeadLetter, ErrorClass, JSONValue, LastFailure
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
    http_404 = LastFailure(
        number=2,
        ended_at=103.0,
        error_type="httpx.HTTPStatusError",
        message="404 Not Found",
        traceback="Traceback ...",
        http_status=404,
        error_class="USER_ERROR",
        rule="http-4xx",
    )

    assert DeadLetter.from_json(body) == DeadLetter(
        job_id="j1",
        queue="charts",
        task="charts.render",
        labels={"user": "u-7"},
        created_at=100.0,
        reason="poison: lost",
        poison=True,
        last=http_404,
        cause=http_404,
    )


def test_the_cause_is_the_last_error_of_the_job_not_of_its_lost_workers() -> None:
    history = [
        attempt(1, error_type="TimeoutError", message="slow"),
        attempt(2, error_type="ValueError", message="bad chart", error_class=ErrorClass.USER_ERROR),
        attempt(3, error_type=WORKER_LOST, message="worker w was lost"),
    ]
    body = json.loads(json.dumps(dead_letter_payload(JOB, history, "poison: lost", poison=True)))

    letter = DeadLetter.from_json(body)

    assert (letter.last.number, letter.last.error_type) == (3, WORKER_LOST)
    assert (letter.cause.number, letter.cause.error_type) == (2, "ValueError")
    assert letter.cause.error_class == "USER_ERROR"


def test_a_letter_that_only_lost_its_workers_is_caused_by_the_last_loss() -> None:
    history = [attempt(n, error_type=WORKER_LOST, message=f"lost {n}") for n in (1, 2)]
    body = json.loads(json.dumps(dead_letter_payload(JOB, history, "poison: lost", poison=True)))

    letter = DeadLetter.from_json(body)

    assert letter.cause == letter.last and letter.cause.message == "lost 2"


def test_a_letter_without_history_or_flags_has_an_empty_last_failure() -> None:
    body: JSONValue = {"job_id": "j1", "queue": "charts", "task": "charts.render", "attempts": []}

    letter = DeadLetter.from_json(body)

    assert (letter.last, letter.cause, letter.poison, letter.reason, letter.labels) == (
        LastFailure(),
        LastFailure(),
        False,
        "",
        {},
    )
    assert letter.created_at is None
