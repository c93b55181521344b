"""The notifier's receivers down and back, over every backend, with a real HTTP receiver
on 127.0.0.1: an outage is noticed once, its rows wait uncharged and go out once after
it; a row refused for its own reason is charged its backoff, as before; a claim holds
a row against every other dispatcher until it is settled, given back or runs out."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.breaker import PROBE_BACKOFF_CAP
from deadletter.notify import dispatch
from deadletter.notify.dispatch import Dispatcher
from deadletter.store.outbox import Outbox
from tests.contract.test_crash import wait_for
from tests.contract.test_dlq_handler import make_app, outage_alerts, rows
from tests.contract.test_dlq_resilience import events, receiver
from tests.integration.conftest import HttpReceiver

__all__ = ["receiver"]

NOTIFICATIONS_DOWN = "User notifications wait: the user notification receiver is down"
NOTIFICATIONS_BACK = "The user notification receiver is back"


@pytest.fixture
def app(store_url: str, tmp_path: Path, receiver: HttpReceiver) -> Iterator[App]:
    """An app whose alerts and user notifications go to `receiver`; no worker runs: the
    test turns its dispatcher itself."""
    application = make_app(
        store_url,
        tmp_path,
        alert_urls=[receiver.url("/alerts", scheme="json")],
        user_url_template=receiver.url("/users/{user}", scheme="json"),
    )
    yield application
    application.close()


def notify(app: App, *users: str) -> None:
    """A pending notification for each user, due now, in the order given."""
    now = time.time() - 1
    values = ", ".join(
        f"('n-{user}', 'job-{user}', '{user}', 'Your chart failed', 'Hello {user}',"
        f" 'pending', {now + n / 1000}, {now})"
        for n, user in enumerate(users)
    )
    sql = "INSERT INTO user_notifications (id, job_id, user_id, title, message, status,"
    rows(app, f"{sql} next_attempt_at, created_at) VALUES {values} RETURNING id")


def alert(app: App, *names: str) -> None:
    for name in names:
        app.store.add_alert(
            alert_id=name, kind="new_failure", title=name, body="it broke", now=time.time()
        )


def outbox(app: App) -> dict[str, tuple[Any, ...]]:
    """Every notification and alert by id: status, attempts, next attempt, claimed until."""
    sql = "SELECT id, status, attempts, next_attempt_at, claimed_until FROM {}"
    found = rows(app, sql.format("user_notifications")) + rows(app, sql.format("ops_alerts"))
    return {row[0]: row[1:] for row in found}


def turn(dispatcher: Dispatcher) -> None:
    """What the worker's periodic duties do, a delivery pass and a probe."""
    dispatcher.deliver_due()
    dispatcher.probe()


def turns_until(dispatcher: Dispatcher, done: Callable[[], bool], timeout: float) -> bool:
    def turned() -> bool:
        turn(dispatcher)
        return done()

    return wait_for(turned, timeout)


def outages(app: App) -> list[tuple[str, str]]:
    log = Path(app.settings.dlq.log_file)
    return [
        (e["event"], e["component"]) for e in events(log) if e["event"].startswith("delivery.out")
    ]


def test_a_receiver_down_is_one_outage_its_rows_wait_uncharged_and_go_out_once_back(
    app: App, receiver: HttpReceiver
) -> None:
    dispatcher = app.dlq.dispatcher
    notify(app, *(f"user-{n}" for n in range(5)))
    alert(app, "alert-1", "alert-2", "alert-3")
    receiver.stop()
    assert dispatcher.deliver_due() == 0
    assert not any(breaker.closed for breaker in dispatcher.breakers.values())
    for _ in range(20):  # 2 s of passes and probes, the probes failing
        turn(dispatcher)
        time.sleep(0.1)
    waiting = outbox(app)
    assert {(status, attempts, claimed) for status, attempts, _, claimed in waiting.values()} == {
        ("pending", 0, None)
    }
    assert all(due <= time.time() for _, _, due, _ in waiting.values())  # due, not backing off
    down = [("delivery.outage_began", "user notification receiver")]
    assert outages(app) == [*down, ("delivery.outage_began", "alert receiver")]
    assert outage_alerts(app) == [NOTIFICATIONS_DOWN]

    receiver.restart()
    back = time.monotonic()
    assert turns_until(dispatcher, lambda: all_sent(app), PROBE_BACKOFF_CAP + 5)
    # The probes' backoff had reached 4 s; then one pass sends every waiting row.
    assert time.monotonic() - back < PROBE_BACKOFF_CAP + 1.5
    assert {attempts for _, attempts, _, _ in outbox(app).values()} == {1}
    sent = Counter(json.dumps(r.json_body, sort_keys=True) for r in receiver.requests)
    assert len(sent) == len(outbox(app)) == 10 and max(sent.values()) == 1
    ended = [e for e in events(Path(app.settings.dlq.log_file)) if e["event"].endswith("_ended")]
    assert sorted(e["component"] for e in ended) == ["alert receiver", "user notification receiver"]
    assert all(e["seconds"] >= 2 for e in ended)
    assert outage_alerts(app) == [NOTIFICATIONS_DOWN, NOTIFICATIONS_BACK]


def all_sent(app: App) -> bool:
    return {status for status, _, _, _ in outbox(app).values()} == {"sent"}


def test_rows_refused_for_their_own_reason_are_charged_and_the_receiver_stays_up(
    app: App, receiver: HttpReceiver
) -> None:
    receiver.statuses = {"/users/gone": 404, "/users/broken": 500, "/users/last": 503}
    notify(app, "gone", "ok-1", "broken", "ok-2", "last")
    dispatcher = app.dlq.dispatcher
    assert dispatcher.deliver_due() == 2
    # A 404, and a 500 followed by a row the receiver took, are their own rows'
    # failures: charged, with their backoff. A 503 with no row after it cannot tell:
    # it is given back uncharged, due, for the next row sent to tell.
    assert checked(app) == {
        "n-gone": ("pending", 1, True),
        "n-ok-1": ("sent", 1, False),
        "n-broken": ("pending", 1, True),
        "n-ok-2": ("sent", 1, False),
        "n-last": ("pending", 0, False),
    }
    # The next row sent is that row again, failing so: its own failure, charged.
    assert dispatcher.deliver_due() == 0
    assert checked(app)["n-last"] == ("pending", 1, True)
    assert all(breaker.closed for breaker in dispatcher.breakers.values())
    assert outages(app) == []


def checked(app: App) -> dict[str, tuple[str, int, bool]]:
    """Each row's status, attempts, and whether it is backing off (due in over 5 s)."""
    now = time.time()
    return {key: (status, n, due > now + 5) for key, (status, n, due, _) in outbox(app).items()}


def test_two_broken_targets_side_by_side_read_as_one_outage_then_are_charged(
    app: App, receiver: HttpReceiver
) -> None:
    """Two users' targets answering 500 in a row look like the receiver down: the probes
    pass over them to a row the receiver takes, and from then on they are charged as
    their own failures, never taken for an outage again."""
    receiver.statuses = {"/users/broken-1": 500, "/users/broken-2": 500}
    notify(app, "broken-1", "broken-2", "ok-1", "ok-2")
    dispatcher = app.dlq.dispatcher
    dispatcher.deliver_due()
    assert not dispatcher.breakers[Outbox.NOTIFICATIONS].closed
    assert turns_until(dispatcher, lambda: dispatcher.breakers[Outbox.NOTIFICATIONS].closed, 10)
    for _ in range(10):
        turn(dispatcher)
        time.sleep(0.1)
    found = {key: row[:2] for key, row in outbox(app).items() if key.startswith("n-")}
    assert found == {
        "n-broken-1": ("pending", 1),
        "n-broken-2": ("pending", 1),
        "n-ok-1": ("sent", 1),
        "n-ok-2": ("sent", 1),
    }
    assert outages(app) == [
        ("delivery.outage_began", "user notification receiver"),
        ("delivery.outage_ended", "user notification receiver"),
    ]
    oks = [r for r in receiver.requests if r.path.startswith("/users/ok")]
    assert sorted(r.path for r in oks) == ["/users/ok-1", "/users/ok-2"]
    assert outage_alerts(app) == [NOTIFICATIONS_DOWN, NOTIFICATIONS_BACK]


def test_a_claim_holds_a_row_until_settled_given_back_or_run_out(app: App) -> None:
    alert(app, "alert-1")
    store, now = app.store, time.time()
    [first] = store.claim_deliveries(Outbox.ALERTS, now=now, limit=5, claim_seconds=60)
    assert store.claim_deliveries(Outbox.ALERTS, now=now + 1, limit=5, claim_seconds=60) == []
    # The first claim ran out: another dispatcher takes the row over.
    [second] = store.claim_deliveries(Outbox.ALERTS, now=now + 61, limit=5, claim_seconds=60)
    # The first dispatcher, late, can neither settle nor give back what it no longer holds.
    store.settle_delivery(first, now=now + 62, error="late", retry_at=now + 999)
    store.release_deliveries([first], due=None)
    assert store.claim_deliveries(Outbox.ALERTS, now=now + 62, limit=5, claim_seconds=60) == []
    [(status, attempts, due, claimed)] = outbox(app).values()
    assert (status, attempts, claimed) == ("pending", 0, second.claimed_until)
    assert due <= now  # a claim leaves the row's due time alone
    # Given back: due as it was, claimable at once, uncharged.
    store.release_deliveries([second], due=None)
    [third] = store.claim_deliveries(Outbox.ALERTS, now=now + 62, limit=5, claim_seconds=60)
    store.settle_delivery(third, now=now + 63, error=None, retry_at=0.0)
    assert [row[:2] for row in outbox(app).values()] == [("sent", 1)]


def test_two_dispatchers_through_an_outage_send_each_row_once(
    app: App, store_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    """Two workers' dispatchers (each its own store and breakers) turning side by side
    while the receiver goes down and comes back: no row is charged, none sent twice."""
    dlq = app.settings.dlq
    targets: dict[str, Any] = {
        "alert_urls": list(dlq.alert_urls),
        "user_url_template": dlq.user_url_template,
    }
    other = make_app(store_url, tmp_path / "other", **targets)
    users = [f"user-{n}" for n in range(120)]
    notify(app, *users)
    alert(app, *(f"alert-{n}" for n in range(5)))
    receiver.stop()
    with turning(app.dlq.dispatcher, other.dlq.dispatcher) as errors:
        time.sleep(2)
        assert {row[:2] for row in outbox(app).values()} == {("pending", 0)}
        receiver.restart()
        assert wait_for(lambda: all_sent(app), PROBE_BACKOFF_CAP + 10)
    assert errors == []
    assert {attempts for _, attempts, _, _ in outbox(app).values()} == {1}
    # Each dispatcher raised its own pair of outage alerts, which may read alike: count
    # requests, and each user's path.
    assert len(receiver.requests) == len(outbox(app))
    paths = Counter(r.path for r in receiver.requests if r.path.startswith("/users/"))
    assert len(paths) == len(users) and max(paths.values()) == 1
    other.close()


@contextmanager
def turning(*dispatchers: Dispatcher) -> Iterator[list[Exception]]:
    """Each dispatcher turning on a thread of its own, as a worker's periodic duties
    would, till the block ends; what they raised."""
    stop = threading.Event()
    errors: list[Exception] = []

    def run(dispatcher: Dispatcher) -> None:
        while not stop.wait(0.05):
            try:
                turn(dispatcher)
            except Exception as exc:  # the test reports it
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    try:
        yield errors
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_a_send_is_not_begun_on_a_claim_near_its_end(
    app: App, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim with less than CLAIM_MARGIN left could run out mid-send and the row be
    sent again by another dispatcher: the rows go back unsent and uncharged instead."""
    monkeypatch.setattr(dispatch, "CLAIM_SECONDS", dispatch.CLAIM_MARGIN - 1)
    notify(app, "user-1", "user-2")
    assert app.dlq.dispatcher.deliver_due() == 0
    assert receiver.requests == []
    assert {(row[0], row[1], row[3]) for row in outbox(app).values()} == {("pending", 0, None)}
