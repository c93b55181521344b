"""A PostgreSQL server of a test's own, which it may stop, restart and kill.

Never the shared server on 5432: this one has its own data folder and port. The
suite runs as root, and PostgreSQL refuses to run as root, so the server runs as the
`postgres` user (`runuser`) in a folder that user owns. It listens on `host`, inside the
network namespace `netns` if one is given, and on a Unix socket in its folder, which the
test's own process reaches from any network namespace (`local_url`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

from tests.support.netns import inside

USER = "postgres"


def binaries() -> Path | None:
    """The folder of pg_ctl and initdb, the newest installed; None if there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def usable() -> bool:
    """Whether this machine can run a server of the test's own: binaries, root, the user."""
    return binaries() is not None and os.geteuid() == 0 and shutil.which("runuser") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One server: `start`, `stop(mode)`, `restart(mode)`; `url` names its database."""

    def __init__(
        self, folder: Path, port: int, host: str = "127.0.0.1", netns: str | None = None
    ) -> None:
        self.folder = folder
        self.port = port
        self.host = host
        self.data = folder / "data"
        self.url = f"postgresql://{USER}@{host}:{port}/postgres"
        self.local_url = f"postgresql://{USER}@/postgres?host={folder}&port={port}"
        self._bin = binaries()
        self._inside = inside(netns)

    def _ctl(self, *args: str) -> None:
        assert self._bin is not None
        subprocess.run(
            [
                *self._inside,
                "runuser",
                "-u",
                USER,
                "--",
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.data),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def init(self) -> None:
        assert self._bin is not None
        subprocess.run(
            ["runuser", "-u", USER, "--", str(self._bin / "initdb"), "-D", str(self.data),
             "-A", "trust", "-U", USER, "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        # initdb trusts loopback only: trust the subnets of the server's own interfaces
        # too, for clients in other network namespaces (tests/support/netns.py).
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all samenet trust\n")

    def start(self) -> float:
        """Start and wait until it accepts connections; return that moment (time.time())."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={self.host} -c fsync=off"
        self._ctl("start", "-w", "-l", str(self.folder / "server.log"), "-o", options)
        return self._ready()

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode)

    def restart(self, mode: str) -> float:
        """Stop in `mode` (fast, immediate) and start again; return when it was ready."""
        self.stop(mode)
        return self.start()

    def _ready(self) -> float:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.local_url, connect_timeout=2).close()
                return time.time()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


@contextmanager
def pg_server(host: str = "127.0.0.1", netns: str | None = None) -> Iterator[PgServer]:
    """A fresh server, started, removed with its data at the end."""
    folder = Path(tempfile.mkdtemp(prefix="deadletter-pg-"))
    shutil.chown(folder, USER, USER)
    server = PgServer(folder, _free_port(), host, netns)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):  # already stopped by the test
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
