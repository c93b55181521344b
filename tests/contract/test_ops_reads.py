"""Reading failures on every backend: pages, filters, details, groups, queues, review."""

from __future__ import annotations

import base64
import time

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.failures import FailureItem, failure_details, groups, list_failures
from deadletter.ops.filters import FailureFilter
from deadletter.ops.recovery import Outcome, recovery_queue
from deadletter.ops.review import mark_reviewed, review_log
from tests.support.operator import (
    OTHER_Q,
    Q,
    fail,
    record_failures,
    table,
)


def every_page(dlq_app: App, failure_filter: FailureFilter, limit: int) -> list[FailureItem]:
    seen: list[FailureItem] = []
    cursor = None
    while True:
        page = list_failures(dlq_app.store, failure_filter, limit=limit, cursor=cursor)
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor


def test_pages_visit_every_failure_once_newest_first_across_ties(dlq_app: App) -> None:
    record_failures(dlq_app, 50, ties=4)
    seen = every_page(dlq_app, FailureFilter(), limit=7)
    ids = [item.dead_letter_id for item in seen]
    assert sorted(ids) == [f"dl-{i:06d}" for i in range(50)]
    keys = [(item.failed_at, item.dead_letter_id) for item in seen]
    assert keys == sorted(keys, reverse=True)


def test_a_failure_recorded_between_pages_neither_shifts_nor_repeats_rows(dlq_app: App) -> None:
    record_failures(dlq_app, 20, ties=1)
    first = list_failures(dlq_app.store, limit=5)
    record_failures(dlq_app, 30, ties=1)  # 20..29 are newer than every row of the first page
    second = list_failures(dlq_app.store, limit=5, cursor=first.next_cursor)
    assert [i.dead_letter_id for i in second.items] == [f"dl-{i:06d}" for i in range(14, 9, -1)]


def ids(dlq_app: App, failure_filter: FailureFilter) -> set[int]:
    return {int(item.job_id.split("-")[1]) for item in every_page(dlq_app, failure_filter, 100)}


def test_filters_select_by_each_field_and_combine(dlq_app: App) -> None:
    record_failures(dlq_app, 30, ties=1, start=1_000.0)
    odd = {i for i in range(30) if i % 3 == 0}
    assert ids(dlq_app, FailureFilter(queue=OTHER_Q)) == odd
    assert ids(dlq_app, FailureFilter(error_class="RECOVERABLE")) == set(range(30)) - odd
    assert ids(dlq_app, FailureFilter(fingerprint="fp-odd")) == odd
    assert ids(dlq_app, FailureFilter(since=1_010.0, until=1_013.0)) == {10, 11, 12}
    assert ids(dlq_app, FailureFilter(text="ITEM_2")) == {2} | set(range(20, 30))
    assert ids(dlq_app, FailureFilter(text="job-00000")) == set(range(10))
    assert ids(dlq_app, FailureFilter(job_ids=("job-000003", "job-000004"))) == {3, 4}
    assert ids(dlq_app, FailureFilter(queue=Q, since=1_020.0)) == set(range(20, 30)) - odd


def test_text_is_a_substring_not_a_pattern(dlq_app: App) -> None:
    record_failures(dlq_app, 12, ties=1)
    assert ids(dlq_app, FailureFilter(text="50% done")) == set(range(12))
    assert ids(dlq_app, FailureFilter(text="item_1")) == {1, 10, 11}
    assert ids(dlq_app, FailureFilter(text="item%1")) == set()
    assert ids(dlq_app, FailureFilter(text="!")) == set()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"error_class": "TRANSIENT"}, "error_class"),
        ({"since": 10.0, "until": 5.0}, "since"),
        ({"job_ids": tuple(str(i) for i in range(1001))}, "job_ids"),
    ],
)
def test_invalid_filters_name_their_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field) as raised:
        FailureFilter(**arguments)  # type: ignore[arg-type]
    assert isinstance(raised.value, InvalidRequest) and raised.value.field == field


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJ4IiwieSJd", "WzEsMiwzXQ"])
def test_a_bad_cursor_is_a_clear_error(dlq_app: App, cursor: str) -> None:
    with pytest.raises(InvalidRequest, match="cursor"):
        list_failures(dlq_app.store, limit=5, cursor=cursor)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MALFORMED_CURSORS = [
    "",  # empty: no page of any list
    "!!!not-base64!!!",
    b64('[1e999,"x","t"]'),  # a time past any float
    b64('[NaN,"x","t"]'),
    b64('[1,"x"]'),  # the shape of an unbound cursor
    b64(f'[1,{2**70},"t"]'),  # an id beyond 64 bits
    b64('[1,true,"t"]'),
    "A" * 10_000,  # huge: refused before it is decoded
]


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS)
def test_a_malformed_cursor_is_refused_by_every_list(dlq_app: App, cursor: str) -> None:
    record_failures(dlq_app, 3, ties=1)
    for read in (
        lambda: list_failures(dlq_app.store, limit=1, cursor=cursor),
        lambda: recovery_queue(dlq_app.store, limit=1, cursor=cursor),
        lambda: review_log(dlq_app.store, limit=1, cursor=cursor),
        lambda: audit_entries(dlq_app.store, limit=1, cursor=cursor),
    ):
        with pytest.raises(InvalidRequest) as raised:
            read()
        assert raised.value.field == "cursor"


def test_a_cursor_works_only_with_its_own_list_and_filter(dlq_app: App) -> None:
    record_failures(dlq_app, 30, ties=1)
    mine = FailureFilter(queue=Q)
    cursor = list_failures(dlq_app.store, mine, limit=2).next_cursor
    assert cursor is not None
    assert list_failures(dlq_app.store, FailureFilter(queue=Q), limit=2, cursor=cursor).items
    # The time range may move between pages, as the dashboard's "last hour" does.
    moved = FailureFilter(queue=Q, since=1.0, until=time.time())
    assert list_failures(dlq_app.store, moved, limit=2, cursor=cursor).items
    for other in (FailureFilter(), FailureFilter(queue=OTHER_Q), FailureFilter(queue=Q, text="x")):
        with pytest.raises(InvalidRequest, match="another list or filter"):
            list_failures(dlq_app.store, other, limit=2, cursor=cursor)
    with pytest.raises(InvalidRequest, match="another list or filter"):
        review_log(dlq_app.store, limit=1, cursor=cursor)
    fail(dlq_app, "charts.fetch", "a"), fail(dlq_app, "charts.fetch", "b")
    recovery = recovery_queue(dlq_app.store, status="pending", limit=1).next_cursor
    assert recovery is not None
    for misuse in (
        lambda: recovery_queue(dlq_app.store, status="abandoned", limit=1, cursor=recovery),
        lambda: list_failures(dlq_app.store, limit=1, cursor=recovery),
    ):
        with pytest.raises(InvalidRequest, match="another list or filter"):
            misuse()


def test_details_hold_attempts_rule_group_and_the_forensic_record(dlq_app: App) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/7")
    details = failure_details(dlq_app.store, dlq_app.dlq.blobs, job_id)
    assert details is not None
    assert details.job.id == job_id and details.job.status.value == "failed"
    assert [a.number for a in details.attempts] == [1, 2]
    assert details.failure.error_class == "RECOVERABLE" and details.failure.rule
    assert details.failure.recovery_status == "pending"
    assert details.group is not None and details.group.fingerprint == details.failure.fingerprint
    assert details.forensics is not None and details.forensics_error is None
    assert details.forensics["job"]["job_id"] == job_id
    assert details.forensics["fingerprint"] == details.failure.fingerprint
    assert failure_details(dlq_app.store, dlq_app.dlq.blobs, "no-such-job") is None


def test_details_without_the_blob_still_answer_and_say_why(dlq_app: App) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/8")
    [(key,)] = table(dlq_app, "SELECT forensics_key FROM dlq_failures WHERE job_id = ?", job_id)
    dlq_app.dlq.blobs.delete(key)
    details = failure_details(dlq_app.store, dlq_app.dlq.blobs, job_id)
    assert details is not None and details.forensics is None
    assert details.forensics_error and "BlobNotFound" in details.forensics_error


def test_groups_count_by_cause_filter_and_sort(dlq_app: App) -> None:
    for node in ("1", "2", "3"):
        fail(dlq_app, "reports.build", "server_error", node)
    fail(dlq_app, "reports.build", "mystery", "9")
    fail(dlq_app, "charts.fetch", "a")
    by_count = groups(dlq_app.store)
    assert [g.count for g in by_count] == [3, 1, 1]
    assert by_count[0].error_class == "SYSTEM_ERROR"
    assert [g.error_class for g in groups(dlq_app.store, error_class="UNKNOWN")] == ["UNKNOWN"]
    assert [g.queue for g in groups(dlq_app.store, queue=Q)] == [Q]
    assert groups(dlq_app.store, sort="last_seen")[0].error_class == "RECOVERABLE"
    with pytest.raises(InvalidRequest, match="sort"):
        groups(dlq_app.store, sort="size")  # type: ignore[arg-type]


def test_the_recovery_queue_by_status(dlq_app: App) -> None:
    first, second = fail(dlq_app, "charts.fetch", "a"), fail(dlq_app, "charts.fetch", "b")
    page = recovery_queue(dlq_app.store, status="pending", limit=1)
    rest = recovery_queue(dlq_app.store, status="pending", limit=1, cursor=page.next_cursor)
    assert [e.job_id for e in page.items + rest.items] == [second, first]
    assert rest.next_cursor is None
    assert recovery_queue(dlq_app.store, status="recovered").items == []
    with pytest.raises(InvalidRequest, match="status"):
        recovery_queue(dlq_app.store, status="lost")


def test_review_log_open_then_reviewed_once_with_an_audit_record(dlq_app: App) -> None:
    job_id = fail(dlq_app, "reports.build", "mystery", "9")
    [entry] = review_log(dlq_app.store).items
    assert entry.job_id == job_id and entry.error_type and "KeyError" in entry.error_type
    done = mark_reviewed(dlq_app.store, entry.dead_letter_id, by="ana", note="known flake")
    again = mark_reviewed(dlq_app.store, entry.dead_letter_id, by="bo", note="")
    assert (done.outcome, again.outcome) == (Outcome.REVIEWED, Outcome.ALREADY_REVIEWED)
    assert mark_reviewed(dlq_app.store, "dl-none", by="ana").outcome is Outcome.NOT_FOUND
    assert review_log(dlq_app.store).items == []
    [reviewed] = review_log(dlq_app.store, reviewed=True).items
    assert (reviewed.reviewed_by, reviewed.note) == ("ana", "known flake")
    [record] = audit_entries(dlq_app.store, action=AuditAction.REVIEW).items
    assert (record.actor, record.target, record.reason) == (
        "ana",
        entry.dead_letter_id,
        "known flake",
    )
