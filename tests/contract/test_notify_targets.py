"""An alert with several targets, over every backend, with two real HTTP receivers on
127.0.0.1: a row remembers the targets that took it, so one target failing has it
retried to that target alone, never sent twice to the others; a target removed from
the configuration holds the row back no longer, one added receives it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.breaker import PROBE_BACKOFF_CAP
from deadletter.store.outbox import Outbox
from tests.contract.test_dlq_handler import make_app, rows
from tests.contract.test_dlq_resilience import receiver
from tests.contract.test_notify_outage import alert, all_sent, outbox, turn, turns_until
from tests.integration.conftest import HttpReceiver

__all__ = ["receiver"]


@pytest.fixture
def other() -> Iterator[HttpReceiver]:
    """A second receiver, on a port of its own: a second alert target."""
    server = HttpReceiver()
    server.start()
    yield server
    server.stop()


def alert_app(store_url: str, tmp_path: Path, *targets: HttpReceiver) -> App:
    """An app whose alerts go to each of `targets`; no worker runs: the test turns its
    dispatcher itself."""
    urls = [target.url("/alerts", scheme="json") for target in targets]
    return make_app(store_url, tmp_path, alert_urls=urls)


@pytest.fixture
def app(
    store_url: str, tmp_path: Path, receiver: HttpReceiver, other: HttpReceiver
) -> Iterator[App]:
    application = alert_app(store_url, tmp_path, receiver, other)
    yield application
    application.close()


def received(target: HttpReceiver) -> Counter[str]:
    """How many times the target received each alert, by title."""
    return Counter(request.json_body["title"] for request in target.requests)


def due_now(app: App) -> None:
    """The alerts' backoff over: due again at once."""
    rows(app, f"UPDATE ops_alerts SET next_attempt_at = {time.time() - 1} RETURNING id")


def test_a_target_down_gets_the_alerts_once_back_the_one_up_only_once(
    app: App, receiver: HttpReceiver, other: HttpReceiver
) -> None:
    other.stop()
    alert(app, "alert-1", "alert-2")
    dispatcher = app.dlq.dispatcher
    for _ in range(20):  # 2 s of passes and probes, the probes failing on `other`
        turn(dispatcher)
        time.sleep(0.1)
    assert not dispatcher.breakers[Outbox.ALERTS].closed
    assert received(receiver) == {"alert-1": 1, "alert-2": 1}
    assert {row[:2] for row in outbox(app).values()} == {("pending", 0)}  # uncharged

    other.restart()
    assert turns_until(dispatcher, lambda: all_sent(app), PROBE_BACKOFF_CAP + 5)
    assert received(receiver) == received(other) == {"alert-1": 1, "alert-2": 1}
    assert {row[:2] for row in outbox(app).values()} == {("sent", 1)}


def test_a_target_refusing_an_alert_is_charged_and_retried_alone(
    app: App, receiver: HttpReceiver, other: HttpReceiver
) -> None:
    other.status = 400
    alert(app, "alert-1")
    dispatcher = app.dlq.dispatcher
    for _ in range(3):
        dispatcher.deliver_due()
        due_now(app)
    [(status, attempts, *_)] = outbox(app).values()
    assert (status, attempts) == ("pending", 3)
    [(error,)] = rows(app, "SELECT last_error FROM ops_alerts")
    assert f"failed to 1 of 1 target(s) still owed: json://127.0.0.1:{other.port}/" in error

    other.status = 200
    assert dispatcher.deliver_due() == 1
    assert received(receiver) == {"alert-1": 1}
    assert received(other) == {"alert-1": 4}
    [(targets,)] = rows(app, "SELECT delivered_to FROM ops_alerts")
    assert sorted(json.loads(targets)) == sorted(
        f"json://127.0.0.1:{target.port}/alerts" for target in (receiver, other)
    )


def test_a_target_removed_no_longer_holds_the_alert_one_added_receives_it(
    app: App, store_url: str, tmp_path: Path, receiver: HttpReceiver, other: HttpReceiver
) -> None:
    other.status = 400
    alert(app, "alert-1")
    assert app.dlq.dispatcher.deliver_due() == 0
    due_now(app)
    added = HttpReceiver()
    added.start()
    # A new configuration: `other` removed, `added` added.
    changed = alert_app(store_url, tmp_path / "changed", receiver, added)
    try:
        assert changed.dlq.dispatcher.deliver_due() == 1
    finally:
        changed.close()
        added.stop()
    assert all_sent(app)
    assert received(receiver) == received(other) == received(added) == {"alert-1": 1}
