"""The store inserts the rows the handler gives a failure record (issue 9): which rows a
route adds is the handler's to say (dlq/handler.py), not the store's to read from it."""

from __future__ import annotations

import time
from dataclasses import replace

from deadletter.app import App
from deadletter.model import Notice, Route
from tests.support.operator import failure_record, recovery_status, table


def test_the_store_inserts_the_rows_a_record_carries_whatever_its_route(dlq_app: App) -> None:
    base = replace(failure_record(1, failed_at=1_000.0), review=False)
    given = [
        replace(base, dead_letter_id="dl-a", job_id="job-a", route=Route.REVIEW, recovery=True),
        replace(base, dead_letter_id="dl-b", job_id="job-b", route=Route.RECOVERY, review=True),
        replace(
            base,
            dead_letter_id="dl-c",
            job_id="job-c",
            route=Route.ALERT_OPS,
            notice=Notice("title", "message"),
        ),
    ]
    dlq_app.store.record_failures(given, now=time.time(), alert_window=900)
    assert recovery_status(dlq_app, "job-a") == "pending"
    assert recovery_status(dlq_app, "job-b") is None
    assert table(dlq_app, "SELECT job_id FROM dlq_review_log") == [("job-b",)]
    assert table(dlq_app, "SELECT job_id, title FROM user_notifications") == [("job-c", "title")]
