"""Parked dead letters handed back to the DLQ handler (ops/rehandle.py), on each backend:
a real handler pass routes them, nothing is counted or alerted twice, and what is not
parked is refused with what it is instead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.model import JobState
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.filters import FailureFilter
from deadletter.ops.rehandle import Rehandling, rehandle
from tests.contract.test_dlq_handler import (
    DLQ,
    Q,
    dead_letters,
    enqueue,
    job_state,
    make_app,
    rows,
)
from tests.support.operator import park

PARKED = f"{DLQ}-parked"


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    application = make_app(store_url, tmp_path)
    yield application
    application.close()


def park_all(app: App, count: int) -> tuple[list[str], list[Path]]:
    """`count` jobs failed, each letter parked for a fault of its own; the jobs' ids and
    the folders in the way."""
    ids = dead_letters(app, count)
    blockers = park(app, Q)
    assert len(app.store.list_jobs(queue=PARKED)) == count
    return ids, blockers


def handle(app: App) -> None:
    """One real pass of the DLQ handler over every letter waiting, retries included."""
    app.worker(queues=[Q], dlq_only=True).run(burst=True)


def hand_back(app: App, *ids: str, dry_run: bool = False, **fields: Any) -> Rehandling:
    return rehandle(
        app.store,
        ids=list(ids),
        failure_filter=FailureFilter(**fields),
        actor="ana",
        reason="forensics folder fixed",
        policy=app.policy,
        dry_run=dry_run,
    )


def alerts(app: App, kind: str) -> int:
    return len(rows(app, f"SELECT id FROM ops_alerts WHERE kind = '{kind}'"))


def test_a_parked_letter_handed_back_is_handled_and_routed_once(app: App) -> None:
    [job_id], [blocker] = park_all(app, 1)
    [parked] = app.store.list_jobs(queue=PARKED)
    plan = hand_back(app, dry_run=True, queue=Q)
    assert (plan.count, [p.job_id for p in plan.letters]) == (1, [job_id])
    assert app.store.list_jobs(queue=PARKED) == [parked]  # a dry run changes nothing

    blocker.rmdir()
    done = hand_back(app, queue=Q)
    [letter] = done.letters
    assert (done.count, letter.job_id, letter.parked_id) == (1, job_id, parked.id)
    assert app.store.list_jobs(queue=PARKED) == []
    queued = app.store.get_job(letter.dead_letter_id)
    assert queued is not None and queued.status is JobState.QUEUED
    assert (queued.attempts, queued.max_retries) == (3, 5)  # carries on, two more tries

    handle(app)
    assert job_state(app, job_id) is JobState.FAILED
    assert rows(app, "SELECT job_id, error_class FROM dlq_failures") == [(job_id, "SYSTEM_ERROR")]
    assert app.store.dlq_stats(now=time.time()).total_failed == 1
    assert rows(app, "SELECT count FROM dlq_error_groups") == [(1,)]
    assert (alerts(app, "parked"), alerts(app, "new_failure")) == (1, 1)
    [entry] = audit_entries(app.store, action=AuditAction.REHANDLE).items
    assert (entry.actor, entry.reason, entry.target) == ("ana", "forensics folder fixed", job_id)
    assert entry.details["dead_letter_id"] == letter.dead_letter_id
    assert entry.details["parked_id"] == parked.id


def test_a_letter_parked_again_raises_no_second_parked_alert(app: App) -> None:
    [job_id], _ = park_all(app, 1)
    [first] = app.store.list_jobs(queue=PARKED)
    assert len(hand_back(app, job_id).letters) == 1
    handle(app)  # the folder is still in the way: parked again
    [again] = app.store.list_jobs(queue=PARKED)
    assert again.id != first.id and again.payload["job_id"] == first.payload["job_id"]
    letter = app.store.get_job(again.payload["job_id"])
    assert letter is not None and letter.attempts == 6
    assert alerts(app, "parked") == 1
    assert job_state(app, job_id) is JobState.DEAD_LETTERED
    assert rows(app, "SELECT * FROM dlq_failures") == []


def test_what_is_not_parked_is_refused_with_what_it_is(app: App) -> None:
    [job_id], [blocker] = park_all(app, 1)
    blocker.rmdir()
    handled = enqueue(app, "timeout", "x")
    app.worker().run(burst=True)
    [handled_letter] = [
        j.id for j in app.store.list_jobs(queue=DLQ) if j.payload["job_id"] == handled
    ]
    [parked] = app.store.list_jobs(queue=PARKED)
    done = hand_back(app, parked.id, handled, handled_letter, "nope")
    assert [letter.job_id for letter in done.letters] == [job_id]
    messages = {refusal.job_id: refusal.message for refusal in done.refused}
    assert messages == {
        handled: f"job {handled} has no parked dead letter (the job is failed)",
        handled_letter: f"dead letter {handled_letter} is not parked: it is succeeded on {DLQ}",
        "nope": "no parked letter, dead letter or job nope",
    }
    [again] = hand_back(app, parked.payload["job_id"]).refused
    assert "is not parked: it is queued" in again.message
    assert audit_entries(app.store, action=AuditAction.REHANDLE).items[0].target == job_id


def test_letters_are_chosen_by_the_failure_filter(app: App) -> None:
    ids, _ = park_all(app, 3)
    letters = app.store.list_jobs(queue=DLQ)
    failed = sorted(letter.created_at for letter in letters)
    assert hand_back(app, dry_run=True, queue=Q).count == 3
    assert hand_back(app, dry_run=True, queue="other").count == 0
    assert hand_back(app, dry_run=True, task="charts.render").count == 3
    assert hand_back(app, dry_run=True, since=failed[-1] + 1).count == 0
    assert hand_back(app, dry_run=True, until=failed[-1] + 1).count == 3
    assert hand_back(app, dry_run=True, text=ids[1]).count == 1
    assert hand_back(app, dry_run=True, text="cannot hold both a key").count == 3
    assert hand_back(app, dry_run=True, job_ids=(ids[0], ids[2])).count == 2
    assert hand_back(app, ids[0], dry_run=True, queue="other").count == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "filter"),
        ({"error_class": "UNKNOWN"}, "error_class"),
        ({"fingerprint": "x"}, "fingerprint"),
    ],
)
def test_an_empty_or_classified_filter_is_refused(
    app: App, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        hand_back(app, **fields)
    assert refused.value.field == field


def test_handing_back_needs_a_reason_but_a_dry_run_does_not(app: App) -> None:
    park_all(app, 1)
    with pytest.raises(InvalidRequest):
        rehandle(
            app.store, ids=[], failure_filter=FailureFilter(queue=Q), actor="ana",
            reason=" ", policy=app.policy,
        )  # fmt: skip
    plan = rehandle(
        app.store, ids=[], failure_filter=FailureFilter(), all=True, actor="ana", reason="",
        policy=app.policy, dry_run=True,
    )  # fmt: skip
    assert plan.count == 1 and len(app.store.list_jobs(queue=PARKED)) == 1
