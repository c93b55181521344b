"""docs/quickstart.md, step by step, as a new operator runs it: demo, stats, failures,
serve and the same figures over HTTP, a requeue that recovers a job, an export."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import stop

CLI = [sys.executable, "-c", "from deadletter.cli import main; main()"]


class Operator:
    """Runs `deadletter` commands in one folder, as the walk-through does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [*CLI, *args], cwd=self.folder, env=self.env, capture_output=True, text=True,
            timeout=180, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"deadletter {' '.join(args)}: {done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))

    def serve(self, port: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], cwd=self.folder, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    return Operator(tmp_path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def printed_token(server: subprocess.Popen[str]) -> str:
    """The admin token `serve` prints once, on the line after its announcement."""
    assert server.stdout is not None
    for line in server.stdout:
        if line.strip().startswith("dl_"):
            return line.strip()
    raise AssertionError(f"serve printed no token: {server.stderr.read() if server.stderr else ''}")


@pytest.fixture
def api(operator: Operator) -> Iterator[tuple[str, str]]:
    port = free_port()
    server = operator.serve(port)
    try:
        token = printed_token(server)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.1)
        yield url, token
    finally:
        stop(server, 10)


def test_the_quickstart_walk_through(operator: Operator, api: tuple[str, str]) -> None:
    operator.run("demo")
    stats = operator.json("stats")
    failures = operator.json("failures", "--limit", "5")

    url, token = api
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{url}/api/queue/dlq/stats", headers=auth).json() == stats
    over_http = httpx.get(f"{url}/api/queue/dlq/failures?limit=5", headers=auth).json()
    assert [f["job_id"] for f in over_http["failures"]] == [
        f["job_id"] for f in failures["failures"]
    ]
    assert httpx.get(f"{url}/api/queue/dlq/stats").status_code == 401

    found = operator.json("failures", "--class", "USER_ERROR", "--text", "date range")
    job = found["failures"][0]
    site, chart, _fault = operator.json("show", job["job_id"])["job"]["payload"]["args"]
    payload = json.dumps({"args": [site, chart], "kwargs": {}})
    operator.run("requeue", job["job_id"], "--payload", payload, "--reason", "fixed the dates")
    operator.run("worker", "--app", "deadletter.demo:build_app", "--burst")
    recovery = operator.json("recovery")["recovery"]
    assert {r["job_id"]: r["status"] for r in recovery}[job["job_id"]] == "recovered"

    operator.run("export", "--reason", "triage", "--format", "csv", "--output", "failures.csv")
    with (operator.folder / "failures.csv").open(newline="") as exported:
        assert len(list(csv.DictReader(exported))) == stats["dlq"]["total_failed"]
