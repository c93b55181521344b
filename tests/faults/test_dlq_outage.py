"""A component of the DLQ handler away (10 s, or 30 s: below) under a real DLQ worker process with
letters to handle: an outage, not the letters' failure. No letter is charged or parked
for it, the worker does not exit, and every letter is handled once after it.

- The blob store (a folder replaced by a file: the handler's writes fail as on a volume
  gone; an S3 server stopped): no letter is taken meanwhile, one ops alert says when
  the outage began and one when it ended, and every forensic record is stored after it.
- The notification receiver (an HTTP server on loopback, closed): letters are recorded
  meanwhile (delivery is an outbox apart from the handler); each receiver's outage is
  one event when it begins and one when it ends, nothing is sent or charged an attempt
  meanwhile, and every alert and notification arrives once, promptly, after it.

The issue's figure is 30 s, with DEADLETTER_FAULTS_FULL=1; CI's 10 s keeps each test
under 40 s and meets the same code: the breakers' probe backoff is capped at 5 s.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deadletter.app import App
from deadletter.breaker import PROBE_BACKOFF_CAP
from deadletter.model import JobState
from tests.contract.test_crash import wait_for
from tests.contract.test_dlq_handler import outage_alerts, rows
from tests.contract.test_dlq_resilience import (
    BUCKET,
    PREFIX,
    Bucket,
    check_each_letter_recorded_once,
    dead_letter,
    receiver,
    recorded,
)
from tests.faults.fleet import FULL
from tests.integration.conftest import HttpReceiver
from tests.support import dlq_process
from tests.support.processes import stop

if TYPE_CHECKING:
    from tests.conftest import MotoServer

__all__ = ["receiver"]

OUTAGE = 30.0 if FULL else 10.0
LEASE = 30.0
BLOB_STORE_ALERTS = ["Dead letters wait: the blob store is down", "The blob store is back"]


class Component(Protocol):
    def down(self) -> None: ...

    def up(self) -> None: ...


def logged(log: Path, event: str) -> bool:
    return log.exists() and f'"{event}"' in log.read_text()


class Handling:
    """The settings of a DLQ worker process (dlq_process's, with `overrides`), and the
    test's own app on them, its blob store ready: the worker starts with it up (one
    started during an outage stops at once: it sets up its blob store as it starts)."""

    def __init__(self, url: str, folder: Path, **overrides: Any) -> None:
        self.url = url
        self.folder = folder
        self.overrides = overrides
        self.app = dlq_process.build(url, folder, LEASE, **overrides)
        self.app.dlq.blobs.ensure()

    def start(self) -> subprocess.Popen[bytes]:
        return dlq_process.start(self.url, self.folder, LEASE, **self.overrides)


def ride_out(
    handling: Handling,
    component: Component,
    letters: int,
    meanwhile: Callable[[], None],
    settled: Callable[[], bool] = lambda: True,
) -> None:
    """A DLQ worker process started with its components up; `component` goes down
    before `letters` are dead-lettered, `meanwhile` runs, and it comes back. The worker
    runs until every letter is recorded and `settled`; each letter was recorded once,
    on its first attempt, and the worker ran until told to stop."""
    app, folder = handling.app, handling.folder
    process = handling.start()
    try:
        assert wait_for(lambda: bool(app.store.live_workers(since=time.time() - 60)), 30)
        component.down()
        faults = dead_letter(app, letters)
        meanwhile()
        component.up()
        assert wait_for(lambda: recorded(app) == letters and settled(), 60)
    finally:
        stop(process, 30)
    assert process.returncode == 0
    check_each_letter_recorded_once(app, faults)
    handled = app.store.list_jobs(queue=dlq_process.DLQ, limit=2 * letters)
    assert {letter.attempts for letter in handled} == {1}
    events = [json.loads(line)["event"] for line in (folder / "dlq.log").read_text().splitlines()]
    assert "dlq.step_failed" not in events and "dlq.parked" not in events


def blob_store_waits(app: App, folder: Path, letters: int) -> Callable[[], None]:
    """While the blob store is down: the outage is noticed, no letter is taken."""

    def meanwhile() -> None:
        assert wait_for(lambda: logged(folder / "dlq.log", "dlq.outage_began"), 30)
        assert not wait_for(lambda: recorded(app) > 0, OUTAGE)
        waiting = app.store.list_jobs(queue=dlq_process.DLQ, limit=2 * letters)
        assert {(letter.status, letter.attempts) for letter in waiting} == {(JobState.QUEUED, 0)}

    return meanwhile


# -- the blob store --------------------------------------------------------------------


class Folder:
    """The forensics folder replaced by a file, and put back."""

    def __init__(self, blobs: Path) -> None:
        self.blobs = blobs
        self.aside = blobs.with_name("blobs-aside")

    def down(self) -> None:
        self.blobs.rename(self.aside)
        self.blobs.write_text("a file where the folder should be")

    def up(self) -> None:
        self.blobs.unlink()
        self.aside.rename(self.blobs)


LETTERS = 1000


def test_a_blob_folder_away_parks_and_charges_no_letter(store_url: str, tmp_path: Path) -> None:
    handling = Handling(store_url, tmp_path)
    meanwhile = blob_store_waits(handling.app, tmp_path, LETTERS)
    ride_out(handling, Folder(tmp_path / "blobs"), LETTERS, meanwhile)
    assert outage_alerts(handling.app) == BLOB_STORE_ALERTS
    handling.app.close()


class S3:
    """The S3 server stopped and started again. Moto comes back empty, where a real S3
    keeps its bucket: `up` makes the bucket again, so the handler sees what it would
    see of S3 itself."""

    def __init__(self, server: MotoServer, app: App) -> None:
        self.server = server
        self.app = app

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server.start()
        self.app.dlq.blobs.ensure()


def test_an_s3_server_stopped_parks_and_charges_no_letter(
    store_url: str, tmp_path: Path, own_moto_server: MotoServer, aws_credentials: None
) -> None:
    endpoint = own_moto_server.endpoint_url
    s3 = {"blob_url": f"s3://{BUCKET}/{PREFIX}", "s3_endpoint_url": endpoint}
    handling = Handling(store_url, tmp_path, **s3)
    app = handling.app
    ride_out(handling, S3(own_moto_server, app), LETTERS, blob_store_waits(app, tmp_path, LETTERS))
    assert outage_alerts(app) == BLOB_STORE_ALERTS
    # Every letter's forensic record is in the bucket, stored after the outage (moto
    # lost nothing of this run: no letter was taken before it), and no other.
    bucket = Bucket(endpoint)
    failures = rows(app, "SELECT job_id, forensics_key FROM dlq_failures")
    assert bucket.keys() == {key for _, key in failures}
    assert all(bucket.job_id(key) == job_id for job_id, key in failures)
    app.close()


# -- the notification receiver -----------------------------------------------------------


class Receiver:
    def __init__(self, receiver: HttpReceiver) -> None:
        self.receiver = receiver

    def down(self) -> None:
        self.receiver.stop()

    def up(self) -> None:
        self.receiver.restart()


NOTIFIED = 200  # a quarter of them notify their user; each kind of fault is one alert


def deliveries(app: App) -> list[tuple[str, int]]:
    """The status and attempts of every alert and user notification."""
    sql = "SELECT status, attempts FROM {}"
    return rows(app, sql.format("ops_alerts")) + rows(app, sql.format("user_notifications"))


RECEIVERS = ["alert receiver", "user notification receiver"]
NOTIFICATIONS_OUTAGE = [
    "User notifications wait: the user notification receiver is down",
    "The user notification receiver is back",
]


def delivery_events(log: Path, *names: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    found = [json.loads(line) for line in log.read_text().splitlines()]
    return [event for event in found if event["event"] in names]


def test_a_notification_receiver_down_loses_repeats_and_charges_nothing(
    store_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    log = tmp_path / "dlq.log"
    dlq = {
        "log_file": str(log),
        "alert_urls": [receiver.url("/alerts", scheme="json")],
        "user_url_template": receiver.url("/users/{user}", scheme="json"),
    }
    handling = Handling(store_url, tmp_path, dlq=dlq)
    app = handling.app
    up: list[float] = []

    def meanwhile() -> None:
        # Each receiver's outage noticed once; then nothing is sent or charged.
        began = "delivery.outage_began"
        assert wait_for(lambda: len(delivery_events(log, began)) == len(RECEIVERS), 30)
        time.sleep(OUTAGE)
        assert set(deliveries(app)) == {("pending", 0)}
        up.append(time.time())

    def all_sent() -> bool:
        return {status for status, _ in deliveries(app)} == {"sent"}

    ride_out(handling, Receiver(receiver), NOTIFIED, meanwhile, settled=all_sent)
    # Each alert and notification sent once, on its first attempt: none charged.
    assert {attempts for _, attempts in deliveries(app)} == {1}
    sent = Counter((r.path, json.dumps(r.json_body, sort_keys=True)) for r in receiver.requests)
    assert max(sent.values()) == 1
    assert len(receiver.requests) == len(deliveries(app))
    assert len([path for path, _ in sent if path.startswith("/users/")]) == NOTIFIED // 4
    check_one_outage_each(log, up[0])
    assert outage_alerts(app) == NOTIFICATIONS_OUTAGE
    app.close()


def check_one_outage_each(log: Path, up: float) -> None:
    """One event as each receiver's outage began and one as it ended, with its length;
    every row went out within a second of its receiver's probe passing, the probe
    within its backoff's cap of the receiver's return."""
    outage = delivery_events(log, "delivery.outage_began", "delivery.outage_ended")
    assert sorted((e["event"], e["component"]) for e in outage) == [
        *(("delivery.outage_began", r) for r in RECEIVERS),
        *(("delivery.outage_ended", r) for r in RECEIVERS),
    ]
    ended = [e for e in outage if e["event"] == "delivery.outage_ended"]
    assert all(e["seconds"] >= OUTAGE for e in ended)
    back = max(e["ts"] for e in ended)
    last = max(e["ts"] for e in delivery_events(log, "delivery.sent"))
    print(f"receiver back +{back - up:.2f} s, every row sent +{last - up:.2f} s")
    assert back - up <= PROBE_BACKOFF_CAP + 1
    assert last - back <= 1.5
