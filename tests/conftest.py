"""Fixtures shared by every suite."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

# -- S3: a real moto server over HTTP on loopback ----------------------------------


class MotoServer:
    """moto's S3 server in its own process. `stop()` kills it as a crash would; `start()`
    brings it back on the same port, empty: moto keeps its state in memory."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        command = [Path(sys.executable).with_name("moto_server"), "-H", "127.0.0.1"]
        with self.log.open("ab") as log:  # a file, not a pipe: moto logs every request
            self._process = subprocess.Popen(
                [*map(str, command), "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_without_aws(os.environ), **DUMMY_AWS},
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"moto_server did not start on {self.endpoint_url}: see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _answers(self) -> bool:
        # http.client, unlike urllib, ignores *_PROXY settings.
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
        except OSError:
            return False
        finally:
            connection.close()
        return True


DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never the user's ~/.aws: its profile, region or endpoint would change what is tested.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _without_aws(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if not name.startswith("AWS_")}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials and region for this test; every other AWS_* setting unset."""
    for name in os.environ.keys() - _without_aws(os.environ).keys():
        monkeypatch.delenv(name)
    for name, value in DUMMY_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a developer's proxy cannot reach loopback


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the session. Tests that stop it use `own_moto_server`,
    so that they cannot wipe the buckets of tests sharing this one."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_moto_server(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto S3 server for this test alone, free to be stopped and restarted."""
    server = MotoServer(tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()
