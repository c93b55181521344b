"""Fixtures for tests that talk to real services over real sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest


class ReceivedRequest(NamedTuple):
    path: str
    headers: dict[str, str]
    json_body: Any  # None when the body is empty or not JSON


class HttpReceiver:
    """An HTTP server on 127.0.0.1 that records every request and answers `status`, or
    the status `statuses` gives for the request's path (its query left out)."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.status = 200
        self.statuses: dict[str, int] = {}
        self._listen(0)

    def _listen(self, port: int) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        # A short poll keeps `stop` (which waits for the loop to notice) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/", scheme: str = "http") -> str:
        """e.g. `url("/alerts", scheme="json")` for an Apprise JSON webhook."""
        return f"{scheme}://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def restart(self) -> None:
        """Listen again on the same port after `stop`: a receiver back from an outage."""
        self._listen(self.port)
        self.start()

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        # Recorded before answering, so that the sender finds it once its call returns.
        self.requests.append(ReceivedRequest(handler.path, dict(handler.headers.items()), body))
        handler.send_response(self.statuses.get(handler.path.split("?")[0], self.status))
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._record(self)

            do_PUT = do_PATCH = do_GET = do_DELETE = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean; the requests are recorded instead

        return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()
