"""The DLQ handler under SIGKILL, an S3 outage and real delivery: every dead letter is
recorded, routed, alerted and stored once; none is lost; nothing leaves unredacted."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.forensics import document as forensic
from deadletter.model import JobState
from tests.contract.test_crash import wait_for
from tests.contract.test_dlq_handler import (
    HTTPError,
    enqueue,
    make_app,
    outage_alerts,
    rows,
    running,
)
from tests.integration.conftest import HttpReceiver
from tests.support import dlq_process
from tests.support.invariants import check_jobs

if TYPE_CHECKING:
    from tests.conftest import MotoServer

Q = dlq_process.QUEUE
DLQ = dlq_process.DLQ

# One error class each; the numbers differ from job to job but are normalised out of the
# fingerprint, so that every fault is one group and one alert.
FAULTS: dict[str, Callable[[int], Exception]] = {
    "timeout": lambda n: TimeoutError(f"Timeout fetching data for site {n} after 30s"),
    "bad_request": lambda n: HTTPError(400, f"chart {n} has no series"),
    "server_error": lambda n: HTTPError(500, f"Internal Server Error at node {n}"),
    "mystery": lambda n: KeyError(f"series_{n}"),
}
# The table each fault is routed to, one row per job; server errors go to ops_alerts.
ROUTED = {
    "timeout": "dlq_recovery_queue",
    "bad_request": "user_notifications",
    "mystery": "dlq_review_log",
}


def dead_letter(app: App, count: int) -> dict[str, str]:
    """`count` jobs through FAULTS in turn, each run once and dead-lettered: fault by job id."""

    @app.task(queue=Q, name="charts.render")
    def render(fault: str, n: int) -> None:
        raise FAULTS[fault](n)

    faults = [list(FAULTS)[n % len(FAULTS)] for n in range(count)]
    specs = [render.spec(f, n).options(labels={"user": f"user-{n}"}) for n, f in enumerate(faults)]
    ids = app.enqueue_many(specs)
    app.worker(dlq=False, concurrency=4).run(burst=True)
    return dict(zip(ids, faults, strict=True))


def recorded(app: App) -> int:
    [(count,)] = rows(app, "SELECT count(*) FROM dlq_failures")
    return int(count)


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def check_each_letter_recorded_once(app: App, faults: dict[str, str]) -> None:
    """No dead letter lost, stuck or parked; one failure row per letter, per job."""
    report = check_jobs(app.store, list(faults), [DLQ])
    assert report.problems == {}
    assert app.store.count_states().get((Q, JobState.FAILED)) == len(faults)
    letters = app.store.list_jobs(queue=DLQ, limit=10 * len(faults))
    assert {letter.status for letter in letters} == {JobState.SUCCEEDED}
    assert app.store.list_jobs(queue=f"{DLQ}-parked") == []
    failures = rows(app, "SELECT dead_letter_id, job_id FROM dlq_failures")
    assert sorted(failures) == sorted((letter.id, letter.payload["job_id"]) for letter in letters)


def check_routes(app: App, faults: dict[str, str]) -> None:
    for fault, table in ROUTED.items():
        routed = sorted(job for (job,) in rows(app, f"SELECT job_id FROM {table}"))
        assert routed == sorted(job for job, f in faults.items() if f == fault), table


def check_alerts(app: App, faults: dict[str, str]) -> None:
    """One alert per group, the first ("new kind of failure"): every later failure of a
    group is folded into it within the window, and server errors are counted exactly."""
    groups = rows(app, "SELECT error_class, count FROM dlq_error_groups ORDER BY error_class")
    per_fault = Counter(faults.values())
    expected = ["RECOVERABLE", "SYSTEM_ERROR", "UNKNOWN", "USER_ERROR"]
    assert [cls for cls, _ in groups] == expected
    assert sum(count for _, count in groups) == len(faults)
    alerts = rows(
        app,
        "SELECT a.kind, g.error_class, a.occurrences FROM ops_alerts a"
        " JOIN dlq_error_groups g ON g.fingerprint = a.fingerprint ORDER BY g.error_class",
    )
    assert [(kind, cls) for kind, cls, _ in alerts] == [("new_failure", c) for c in expected]
    [system] = [n for _, cls, n in alerts if cls == "SYSTEM_ERROR"]
    assert system == per_fault["server_error"]
    # Threshold alerts (thousands of failures in a day) are about the whole, not a group.
    [(total,)] = rows(app, "SELECT count(*) FROM ops_alerts WHERE kind <> 'threshold'")
    assert total == len(expected)


def check_forensics(app: App, blobs: Path) -> None:
    """Every failure's forensic record is a file under its key, and is its job's."""
    for job_id, key in rows(app, "SELECT job_id, forensics_key FROM dlq_failures"):
        assert forensic.decode((blobs / key).read_bytes())["job"]["job_id"] == job_id


# -- 1. SIGKILL of DLQ-only workers in the middle of their batches ------------------------

LETTERS = 3000
KILLS = 12
LEASE = 1.0


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """DLQ worker processes started by the test, killed at its end whatever happened."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    kill(procs)


def kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def kill_while_handling(start: Callable[[], subprocess.Popen[bytes]], app: App) -> None:
    """Two workers; KILLS times, once a batch was recorded, SIGKILL one of them at a random
    moment shortly after (often while it still holds letters) and start another."""
    rng = random.Random(11)
    running_now = [start(), start()]
    for _ in range(KILLS):
        assert batch_recorded(app), "no batch was recorded, or none was left to record"
        time.sleep(rng.uniform(0.0, 0.3))
        kill([running_now.pop(rng.randrange(len(running_now)))])
        running_now.append(start())
    kill(running_now)


def batch_recorded(app: App) -> bool:
    """Wait for a batch to be recorded, with letters still left: the workers are busy."""
    before = recorded(app)
    return wait_for(lambda: before < recorded(app) < LETTERS, 30)


def check_kills_hit_handling(app: App, log: Path) -> None:
    """Kills landed while letters were held (they came back), and after batches were
    recorded but not acknowledged (recorded again: duplicates); none was handled twice."""
    letters = app.store.list_jobs(queue=DLQ, limit=10 * LETTERS)
    assert [letter for letter in letters if letter.attempts > 1]
    seen = events(log)
    assert any(event["event"] == "dlq.duplicate" for event in seen)
    handled = Counter(e["dead_letter_id"] for e in seen if e["event"] == "dlq.handled")
    assert max(handled.values()) == 1


@pytest.mark.slow
def test_killed_dlq_workers_record_route_and_alert_each_letter_once(
    store_url: str, tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    app = dlq_process.build(store_url, tmp_path, LEASE)
    faults = dead_letter(app, LETTERS)

    def start() -> subprocess.Popen[bytes]:
        spawned.append(dlq_process.start(store_url, tmp_path, LEASE))
        return spawned[-1]

    kill_while_handling(start, app)
    app.worker(queues=[Q], dlq_only=True).run(burst=True)

    check_each_letter_recorded_once(app, faults)
    check_routes(app, faults)
    check_alerts(app, faults)
    check_forensics(app, tmp_path / "blobs")
    check_kills_hit_handling(app, tmp_path / "dlq.log")
    app.close()


# -- 2. the S3 blob store goes down in the middle of a run ------------------------------

BUCKET = "forensics"
PREFIX = "dlq/"


class Bucket:
    """The forensics bucket read with boto3 itself, not through the blob store under test."""

    def __init__(self, endpoint: str) -> None:
        path_style = Config(s3={"addressing_style": "path"})  # no DNS name for 127.0.0.1
        self.client = boto3.client("s3", endpoint_url=endpoint, config=path_style)

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
        return {o["Key"].removeprefix(PREFIX) for page in pages for o in page.get("Contents", [])}

    def job_id(self, key: str) -> str:
        """The job id inside the forensic record stored under `key`."""
        data = self.client.get_object(Bucket=BUCKET, Key=PREFIX + key)["Body"].read()
        return str(forensic.decode(data)["job"]["job_id"])


class Outage:
    """A DLQ hook: stops the S3 server right after the first batch is recorded, so that
    the rest of the letters meet the outage; `began` is set when the handler noticed it.
    Moto comes back empty, where a real S3 keeps its bucket; so `restart` recreates the
    bucket, and the handler sees what it would see from S3 itself."""

    def __init__(self, app: App, server: MotoServer) -> None:
        self.app = app
        self.server = server
        self.bucket = Bucket(server.endpoint_url)
        self.stored_before: set[str] = set()
        self.stopped = threading.Event()
        self.began = threading.Event()
        self.restarted_at = 0.0

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        if event == "dlq.handled" and not self.stopped.is_set():
            self.stored_before = self.bucket.keys()  # moto forgets them when it stops
            self.server.stop()
            self.stopped.set()
        elif event == "dlq.outage_began":
            self.began.set()

    def restart(self) -> None:
        self.restarted_at = time.time()
        self.server.start()
        self.app.dlq.blobs.ensure()


def s3_app(url: str, folder: Path, endpoint: str, bucket: str, **dlq_policy: float) -> App:
    config = dlq_process.config(url, folder, lease_seconds=30.0)
    config |= {"blob_url": f"s3://{bucket}/{PREFIX}", "s3_endpoint_url": endpoint}
    config["queues"] = {**config["queues"], DLQ: dlq_policy}
    return App(settings_from_mapping(config))


def test_letters_that_meet_an_s3_outage_end_with_their_forensics(
    store_url: str, tmp_path: Path, own_moto_server: MotoServer, aws_credentials: None
) -> None:
    # Few retries: an outage that charged the letters would park them.
    policy = {"max_retries": 2, "backoff_base": 0.05, "backoff_max": 0.2}
    app = s3_app(store_url, tmp_path, own_moto_server.endpoint_url, BUCKET, **policy)
    app.dlq.blobs.ensure()
    faults = dead_letter(app, 200)
    outage = Outage(app, own_moto_server)
    app.dlq.events.hooks.append(outage)
    # One batch of 20 at a time: no batch is half stored when the server stops.
    worker = app.worker(queues=[Q], dlq_only=True, concurrency=1, batch_size=20)
    with running(worker):
        assert wait_for(outage.began.is_set, 30)
        time.sleep(3)  # the handler probes S3 meanwhile, and takes no letter
        assert recorded(app) < len(faults)
        outage.restart()
        assert wait_for(lambda: recorded(app) == len(faults), 30)

    check_each_letter_recorded_once(app, faults)
    check_stored_across_the_outage(app, outage, tmp_path / "dlq.log")
    app.close()


def check_stored_across_the_outage(app: App, outage: Outage, log: Path) -> None:
    """Every failure was stored before the outage (as listed then) or after it; every
    letter that failed its forensics during the outage is among the latter. What was
    stored before is not read again: moto lost it, the handler did not."""
    sql = "SELECT dead_letter_id, job_id, forensics_key, handled_at FROM dlq_failures"
    failures = rows(app, sql)
    before = {key for _, _, key, at in failures if at < outage.restarted_at}
    after = {letter: (job, key) for letter, job, key, at in failures if at >= outage.restarted_at}
    assert before and before <= outage.stored_before
    # Nothing missing, nothing stored for a letter recorded before: exactly these.
    assert outage.bucket.keys() == {key for _, key in after.values()}
    for job_id, key in after.values():
        assert outage.bucket.job_id(key) == job_id
    # The outage charged no letter: each was handled on its first attempt, and the
    # outage is one pair of alerts, not one per letter.
    assert {letter.attempts for letter in app.store.list_jobs(queue=DLQ, limit=1000)} == {1}
    kinds = [event["event"] for event in events(log)]
    assert kinds.count("dlq.outage_began") == kinds.count("dlq.outage_ended") == 1
    assert "dlq.step_failed" not in kinds
    assert outage_alerts(app) == [
        "Dead letters wait: the blob store is down",
        "The blob store is back",
    ]


def test_a_missing_bucket_is_an_outage_the_letters_wait_for_uncharged(
    store_url: str, tmp_path: Path, moto_server: MotoServer, aws_credentials: None
) -> None:
    policy = {"max_retries": 2, "backoff_base": 0.0}
    bucket = f"created-late-{random.randrange(10**9)}"
    app = s3_app(store_url, tmp_path, moto_server.endpoint_url, bucket, **policy)
    faults = dead_letter(app, 3)
    with running(app.worker(queues=[Q], dlq_only=True)):
        assert wait_for(lambda: len(outage_alerts(app)) == 1, 10)
        time.sleep(1)
        assert [letter.attempts for letter in app.store.list_jobs(queue=DLQ)] == [0] * 3
        app.dlq.blobs.ensure()  # what `deadletter deploy` does
        assert wait_for(lambda: recorded(app) == len(faults), 10)
    check_each_letter_recorded_once(app, faults)
    assert len(outage_alerts(app)) == 2
    app.close()


# -- 3. alerts and notifications through Apprise to a real HTTP receiver -----------------

SECRET = "Bearer abcdefgh12345678"
EMAIL = "ops@example.com"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """The integration suite's HTTP receiver (its fixture is out of this folder's reach)."""
    server = HttpReceiver()
    server.start()
    yield server
    server.stop()


def alerts(app: App, error_class: str) -> list[tuple[Any, ...]]:
    """The status, attempts, last error and next attempt of the alerts about a class."""
    sql = "SELECT status, attempts, last_error, next_attempt_at FROM ops_alerts"
    return rows(app, f"{sql} WHERE title LIKE '%: {error_class}'")


def sent_bodies(receiver: HttpReceiver) -> str:
    return json.dumps([request.json_body for request in receiver.requests])


def test_alerts_and_notifications_arrive_redacted_and_a_failed_send_is_retried(
    store_url: str, tmp_path: Path, receiver: HttpReceiver
) -> None:
    app = make_app(
        store_url,
        tmp_path,
        alert_urls=[receiver.url("/alerts", scheme="json")],
        user_url_template=receiver.url("/users/{user}", scheme="json"),
    )
    enqueue(app, "server_error", f"7 for {EMAIL}, Authorization: {SECRET}")
    enqueue(app, "bad_request", f"{EMAIL} ({SECRET})", user="user-42")
    with running(app.worker()):
        # Two new kinds of failure alerted, one user told; the delivery loop runs every 2 s.
        assert wait_for(lambda: len(receiver.requests) == 3, 15)
        paths = sorted(request.path.split("?")[0] for request in receiver.requests)
        assert paths == ["/alerts", "/alerts", "/users/user-42"]
        sent = sent_bodies(receiver)
        assert EMAIL not in sent and "abcdefgh12345678" not in sent and "[REDACTED]" in sent
        # The receiver answers before the sender records the send: wait for the record.
        assert wait_for(
            lambda: (
                [a[:2] for c in ("SYSTEM_ERROR", "USER_ERROR") for a in alerts(app, c)]
                == [("sent", 1), ("sent", 1)]
            ),
            10,
        )
        assert wait_for(
            lambda: rows(app, "SELECT status, attempts FROM user_notifications") == [("sent", 1)],
            10,
        )

        receiver.status = 500
        enqueue(app, "mystery", "9")
        assert wait_for(lambda: [a[1] for a in alerts(app, "UNKNOWN")] == [1], 15)
        [(status, _, error, next_at)] = alerts(app, "UNKNOWN")
        assert status == "pending" and "500" in error
        assert next_at > time.time() + 5  # backing off, not dropped
        # Delivery is an outbox apart from the handler: the receiver failing charged and
        # parked no letter; each was handled on its first attempt.
        letters = app.store.list_jobs(queue=DLQ)
        assert {(letter.status, letter.attempts) for letter in letters} == {(JobState.SUCCEEDED, 1)}
        assert app.store.list_jobs(queue=f"{DLQ}-parked") == []

        receiver.status = 200
        rows(app, "UPDATE ops_alerts SET next_attempt_at = 0 WHERE status = 'pending' RETURNING id")
        assert wait_for(lambda: [a[:2] for a in alerts(app, "UNKNOWN")] == [("sent", 2)], 15)
    retried = [r for r in receiver.requests if "KeyError" in json.dumps(r.json_body)]
    # Answered 500 with no other alert sent beside it (one row cannot tell its receiver
    # down from its own failure): given back uncharged, then charged on its second
    # try, then delivered.
    assert len(retried) == 3
    app.close()
