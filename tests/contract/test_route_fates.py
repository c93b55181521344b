"""What the dashboard says became of each failure's route (ops/dashboard.route_fate), on
every backend: for each class, with and without the row its route writes."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.model import AlertText, ErrorClass, FailureAlert, Notice, Route
from deadletter.ops.dashboard import Fate, failure_series, route_fate
from deadletter.ops.failures import FailureItem, list_failures
from deadletter.ops.review import mark_reviewed
from deadletter.store.outbox import Outbox
from tests.cli.test_cli_reads import fail_one_of_each_class
from tests.support.operator import failure_record


def failures(app: App) -> dict[str, FailureItem]:
    """Every failure, by job id."""
    return {item.job_id: item for item in list_failures(app.store, limit=100).items}


def test_each_class_says_what_its_route_did(dlq_app: App) -> None:
    jobs = fail_one_of_each_class(dlq_app)
    unknown = failures(dlq_app)[jobs["UNKNOWN"]]
    mark_reviewed(dlq_app.store, unknown.dead_letter_id, by="tester", note="a typo in a series")
    found = failures(dlq_app)
    fates = {kind: route_fate(dlq_app.store, found[job_id]) for kind, job_id in jobs.items()}
    raised = Fate("ops alert", "new_failure alert raised (pending, 1 occurrences)")
    assert fates == {  # each is the first of its group: a new-failure alert each
        "RECOVERABLE": [Fate("recovery queue", "pending"), raised],
        "USER_ERROR": [
            Fate("user notification", "not sent: the job has no user label"),
            raised,
        ],
        "SYSTEM_ERROR": [raised],
        "UNKNOWN": [Fate("review log", "reviewed by tester: a typo in a series"), raised],
    }


def test_a_notification_whose_delivery_failed_says_it_is_retried(dlq_app: App) -> None:
    """No worker runs: its dispatcher would try the notification first."""
    record = replace(
        failure_record(0, time.time() - 1),
        error_class=ErrorClass.USER_ERROR,
        route=Route.NOTIFY_USER,
        review=False,
        user_id="user-42",
        notice=Notice("Your report failed", "q3 has no data"),
    )
    dlq_app.store.record_failures([record], now=record.failed_at, alert_window=900)
    item = failures(dlq_app)[record.job_id]
    assert route_fate(dlq_app.store, item)[0] == Fate("user notification", "notification pending")
    now = time.time()
    [delivery] = dlq_app.store.claim_deliveries(
        Outbox.NOTIFICATIONS, now=now, limit=10, claim_seconds=30
    )
    dlq_app.store.settle_delivery(delivery, now=now, error="HTTP 500 from /users", retry_at=now)
    assert route_fate(dlq_app.store, item)[0] == Fate(
        "user notification",
        "notification pending, retried: delivery failed (1 attempt): HTTP 500 from /users",
    )


def test_an_alert_owed_to_some_of_its_targets_says_which_took_it(dlq_app: App) -> None:
    """No worker runs: its dispatcher would try the alert first."""
    record = failure_record(0, time.time() - 1)
    text = AlertText(f"alert-{record.dead_letter_id}", "new_failure", "t", "b")
    alert = FailureAlert(text, text, folds_into=frozenset({"new_failure"}), always=True)
    dlq_app.store.record_failures(
        [replace(record, alert=alert)], now=record.failed_at, alert_window=900
    )
    item = failures(dlq_app)[record.job_id]
    now = time.time()
    [delivery] = dlq_app.store.claim_deliveries(Outbox.ALERTS, now=now, limit=10, claim_seconds=30)
    error = "delivery failed to 1 of 2 target(s): json://pager/alerts (error=400.)"
    took = delivery.reached(["json://chat/alerts"])
    dlq_app.store.settle_delivery(took, now=now, error=error, retry_at=now)
    assert route_fate(dlq_app.store, item)[-1] == Fate(
        "ops alert",
        "new_failure alert raised (pending, 1 occurrences), delivered so far to json://chat/alerts",
    )


def test_routes_whose_rows_are_not_there_say_so(dlq_app: App) -> None:
    records = [
        replace(failure_record(i, 1_000.0), error_class=kind, route=Route.REVIEW, review=False)
        for i, kind in enumerate(
            (ErrorClass.USER_ERROR, ErrorClass.SYSTEM_ERROR, ErrorClass.UNKNOWN)
        )
    ]
    dlq_app.store.record_failures(records, now=2_000.0, alert_window=900)
    found = failures(dlq_app)
    fates = [route_fate(dlq_app.store, found[record.job_id]) for record in records]
    assert fates == [
        [Fate("user notification", "no notification")],
        [Fate("ops alert", "no alert found")],
        [Fate("review log", "no review entry")],
    ]


def test_a_chart_of_an_unknown_span_is_refused(dlq_app: App) -> None:
    with pytest.raises(InvalidRequest, match="1h, 24h, 7d"):
        failure_series(dlq_app.store, span="2h", now=2_000.0)
