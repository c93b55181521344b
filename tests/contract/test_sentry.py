"""Failed attempts in Sentry (`[sentry]`), end to end: a real worker on each backend
reports to a local HTTP receiver standing in for the DSN, which reads the envelopes as
Sentry would: the job's context, its fingerprint, and no secret."""

from __future__ import annotations

import gzip
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import SentrySettings
from deadletter.dlq.fingerprint import fingerprint
from deadletter.errors import ConfigError
from deadletter.redact import Redactor
from tests.support.one_queue import one_queue_settings

Q = "tracked"
SECRET = "sk_live_51HcQJx2eZvKYlo2C0123456789abcdef"


class Receiver(ThreadingHTTPServer):
    """Sentry's envelope endpoint, `/api/<project>/envelope/`, keeping what it received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.events: list[dict[str, Any]] = []

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.server_address[1]}/42"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        # An envelope: its header, then a header and a payload per item.
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
        self.server.paths.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def make_app(store_url: str, tmp_path: Path, dsn: str, report: str) -> App:
    settings = one_queue_settings(
        store_url, tmp_path, Q, sentry={"dsn": dsn, "report": report, "environment": "test"}
    )
    app = App(settings)

    @app.task(queue=Q, name="billing.charge")
    def charge(customer: str) -> None:
        raise ConnectionResetError(f"payment API refused api_key={SECRET} for {customer}")

    return app


@pytest.mark.parametrize(("report", "events"), [("attempts", 2), ("dead_letters", 1)])
def test_failed_attempts_reach_sentry_with_the_jobs_context(
    store_url: str, tmp_path: Path, receiver: Receiver, report: str, events: int
) -> None:
    app = make_app(store_url, tmp_path, receiver.dsn, report)
    try:
        job_id = app.enqueue(app.tasks["billing.charge"].spec("c-17"))
        app.worker(queues=[Q], dlq=False).run(burst=True)
        [*_, last] = app.store.attempts(job_id)
    finally:
        app.close()
    assert set(receiver.paths) == {"/api/42/envelope/"}
    assert len(receiver.events) == events
    for event in receiver.events:
        job = event["contexts"]["job"]
        assert (job["id"], job["task"], job["queue"]) == (job_id, "billing.charge", Q)
        assert event["tags"]["deadletter.queue"] == Q
        assert event["environment"] == "test"
        [exception] = event["exception"]["values"]
        assert exception["type"] == "ConnectionResetError"
        assert "c-17" in exception["value"]
        assert event["fingerprint"] == [
            fingerprint(last.error_type or "", last.message or "", last.traceback)
        ]
        assert SECRET not in json.dumps(event)
    assert [e["contexts"]["job"]["attempt"] for e in receiver.events] == [1, 2][-events:]
    assert receiver.events[-1]["tags"]["deadletter.outcome"] == "dead_lettered"


def test_a_report_setting_not_known_is_an_error_naming_it() -> None:
    from deadletter.telemetry.sentry import SentryReporter

    bad = SentrySettings(dsn="http://public@127.0.0.1:9/1", report="everything")
    with pytest.raises(ConfigError, match="report must be one of attempts, dead_letters"):
        SentryReporter(bad, Redactor.from_config())


def test_a_dsn_without_the_extra_installed_is_an_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # as if not installed
    from deadletter.telemetry.sentry import SentryReporter

    wanted = SentrySettings(dsn="http://public@127.0.0.1:9/1")
    with pytest.raises(ConfigError, match=r"pip install 'deadletter\[sentry\]'"):
        SentryReporter(wanted, Redactor.from_config())
