"""The HTTP API as a client meets it: a real uvicorn server on loopback, real tokens,
over failures a real worker produced (`dlq_app`, from the contract tests), on every
backend."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from deadletter.api import create_api
from deadletter.app import App
from deadletter.config import ServeSettings
from deadletter.ops import tokens
from tests.contract.conftest import dlq_app, downstream, store_url
from tests.support.operator import run_worker

# Fixtures shared with the contract tests, found by pytest through these names.
__all__ = ["dlq_app", "downstream", "store_url"]

# Tests of everything but the rate limit must not meet it.
UNLIMITED = ServeSettings(rate_limit=math.inf)


@dataclass
class Server:
    """A running API server and the app it serves (its own, as another process's)."""

    url: str
    app: App

    def client(self, secret: str | None = None) -> httpx.Client:
        """A client sending `secret` as its bearer token (none: no Authorization)."""
        # Every action says its body is JSON, even an empty one, as the API requires.
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        # trust_env=False: a developer's proxy settings cannot reach loopback.
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)


@contextmanager
def running(
    app: App, *, auth: bool = True, build: Callable[..., FastAPI] = create_api
) -> Iterator[Server]:
    """uvicorn serving `build(app)` (the API alone, or the API with the dashboard) in a
    thread, on a loopback socket bound before it starts (no race for a free port);
    stopped, and its app closed, on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build(app, auth=auth), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{sock.getsockname()[1]}", app)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        app.close()


ServerFactory = Callable[..., "Server"]


@pytest.fixture
def start_server(dlq_app: App) -> Iterator[ServerFactory]:
    """Start servers over `dlq_app`'s database: `start_server(serve=ServeSettings(...),
    auth=True)`. Each serves its own App, as a separate process would."""
    with ExitStack() as stack:

        def start(*, serve: ServeSettings = UNLIMITED, auth: bool = True) -> Server:
            app = App(replace(dlq_app.settings, serve=serve))
            return stack.enter_context(running(app, auth=auth))

        yield start


@pytest.fixture
def server(start_server: ServerFactory) -> Server:
    return start_server()


def fail_many(app: App, count: int) -> list[str]:
    """`count` jobs of `charts.fetch` failed through the DLQ by one worker run."""
    fetch = app.tasks["charts.fetch"]
    job_ids = app.enqueue_many(fetch.spec(f"tiles/{i}") for i in range(count))
    run_worker(app)
    return job_ids


@pytest.fixture
def secrets(dlq_app: App) -> dict[str, str]:
    """A live token of each scope, by scope name, created as `deadletter token` does."""
    return {
        scope: tokens.create(dlq_app.store, f"{scope}-bot", [scope], now=time.time(), actor="test")[
            1
        ]
        for scope in ("read", "operate", "admin")
    }
