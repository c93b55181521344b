"""`deadletter serve` as a newcomer starts it: locked, on loopback, its token printed once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.processes import stop

COMMAND = [sys.executable, "-c", "from deadletter.cli import main; main()"]
TOKEN = re.compile(r"dl_[A-Za-z0-9_-]{43}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def serving(
    store_url: str, folder: Path, *args: str, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`deadletter serve` in a subprocess, once it answers: its URL and its process.
    Stopped with SIGTERM, as a service manager stops it. Its output goes to pipes, or
    with `log` to that file (a pipe nobody reads fills up under many requests)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    env |= {"DEADLETTER_DATABASE_URL": store_url, "DEADLETTER_BLOB_URL": str(folder / "blobs")}
    with ExitStack() as files:
        output = subprocess.PIPE if log is None else files.enter_context(log.open("w"))
        process = subprocess.Popen(
            [*COMMAND, "serve", "--port", str(port), *args],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, process)
            yield url, process
        finally:
            stop(process, 15)


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/healthz", trust_env=False, timeout=1)
            return
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.05)


def announcement(process: subprocess.Popen[str]) -> str:
    """What serve printed on start, up to its line naming `deadletter token`."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or "`deadletter token" not in lines[-1]:
        line = process.stdout.readline()
        assert line, f"serve printed only {lines!r}"
        lines.append(line)
    return "".join(lines)


def test_serve_prints_a_token_once_and_listens_on_loopback_only(
    store_url: str, tmp_path: Path
) -> None:
    with serving(store_url, tmp_path) as (url, process):
        printed = announcement(process)
        [secret] = set(TOKEN.findall(printed))
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=url, trust_env=False) as client:
            assert client.get("/api/queue/dlq/stats").status_code == 401
            assert client.get("/api/queue/dlq/stats", headers=headers).status_code == 200
        listening = [
            c.laddr.ip
            for c in psutil.Process(process.pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        ]
    assert listening == ["127.0.0.1"]
    assert f"{url}/docs" in printed and "shown this once" in printed
    with serving(store_url, tmp_path) as (url, process):
        printed_again = announcement(process)
        with httpx.Client(base_url=url, trust_env=False, headers=headers) as client:
            assert client.get("/api/queue/dlq/stats").status_code == 200
    assert not TOKEN.search(printed_again)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_serve_without_auth_says_so_loudly(store_url: str, tmp_path: Path) -> None:
    with serving(store_url, tmp_path, "--no-auth") as (url, process):
        assert httpx.get(f"{url}/api/queue/dlq/stats", trust_env=False).status_code == 200
    printed, logged = process.communicate(timeout=15)
    assert "AUTH IS OFF" in logged and not TOKEN.search(printed)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_serve_on_a_taken_port_says_so_and_mints_nothing(store_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    env |= {"DEADLETTER_DATABASE_URL": store_url, "DEADLETTER_BLOB_URL": str(tmp_path / "blobs")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*COMMAND, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: cannot listen on http://127.0.0.1:{port}: Address already in use: another"
        " program (another `deadletter serve`?) listens there; choose a port with --port"
        " or [serve] port"
    ]
    # Nothing was minted: the next start that works still creates the first token.
    with serving(store_url, tmp_path) as (_, process):
        assert TOKEN.search(announcement(process))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_serve_refuses_no_auth_beyond_loopback(store_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    env["DEADLETTER_DATABASE_URL"] = store_url
    done = subprocess.run(
        [*COMMAND, "serve", "--no-auth", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "--no-auth serves on this machine's loopback only" in (
        done.stderr
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_once_every_token_is_revoked_serve_says_how_to_make_one(
    store_url: str, tmp_path: Path
) -> None:
    with serving(store_url, tmp_path) as (url, process):
        [secret] = set(TOKEN.findall(announcement(process)))
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, trust_env=False, headers=headers) as client:
            assert client.delete("/api/tokens/initial-0").status_code == 200
    with serving(store_url, tmp_path) as (url, process):
        printed = announcement(process)
    assert not TOKEN.search(printed) and "deadletter token create" in printed
