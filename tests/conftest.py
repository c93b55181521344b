"""Fixtures shared by every suite.

Databases: a SQLite test gets a file in its own folder; a PostgreSQL test gets a fresh
database copied from a template migrated once per session (`CREATE DATABASE ... TEMPLATE`
copies files, far faster than migrating again). The template's name is unique to the
session, so that several test sessions can share one server without dropping each
other's template.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from deadletter.store.postgres import PostgresStore
from tests.support.required import missing

# -- Ctrl-C reaches the commands the tests start -----------------------------------

# A shell starts a background job with SIGINT ignored, and an ignored signal stays
# ignored across exec: the CLI and workers the tests interrupt would never see their
# Ctrl-C. Python's own handler is reset to the default in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# -- the developer's own files: never written by a test ---------------------------

# Where `make demo` and the developer's own runs keep their database, forensics and DLQ
# log: settings a test forgets to point at its tmp_path default to this folder.
OWN_FILES = Path(__file__).resolve().parents[1] / ".deadletter"


def _changes_seen(folder: Path) -> dict[str, int]:
    """Modification times of the folder's subfolders and of its own files: a new file
    anywhere changes its folder's time, an appended log or a database its own. Files
    deeper down are not read one by one, so that a large forensics folder costs little."""
    seen: dict[str, int] = {}
    for parent, _folders, files in os.walk(folder):
        seen[parent] = os.stat(parent).st_mtime_ns
        for name in files if parent == str(folder) else ():
            seen[os.path.join(parent, name)] = os.stat(os.path.join(parent, name)).st_mtime_ns
    return seen


@pytest.fixture(autouse=True)
def _leaves_own_files_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test that wrote into the working tree's `.deadletter/`."""
    before = _changes_seen(OWN_FILES)
    yield
    changed = sorted(
        path for path, mtime in _changes_seen(OWN_FILES).items() if before.get(path) != mtime
    )
    if changed:
        pytest.fail(f"{request.node.nodeid} wrote into {OWN_FILES}: {', '.join(changed)}")


# -- databases: a fresh one of each backend per test ----------------------------------

POSTGRES = os.environ.get("DEADLETTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_database(name: str) -> str:
    """The URL of database `name` on the test server."""
    return urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{name}"))


def _admin(statement: str) -> None:
    # CREATE and DROP DATABASE cannot run inside a transaction.
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement.encode())


def _fresh_database(template: str | None) -> Iterator[str]:
    name = f"dl_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    yield postgres_database(name)
    # FORCE: a test that failed may have left connections open.
    _admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL; skips PostgreSQL tests when it is down, fails them on CI."""
    try:
        _admin("SELECT 1")
    except psycopg.OperationalError as exc:
        reason = (
            f"PostgreSQL is unreachable at {POSTGRES} ({exc}); start it, or point"
            " DEADLETTER_TEST_POSTGRES at a server where the user may create databases"
        )
        missing(reason)
    return POSTGRES


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """A database migrated once per session, copied for every test."""
    name = f"deadletter_template_{uuid.uuid4().hex[:8]}"
    _admin(f"CREATE DATABASE {name}")
    store = PostgresStore(postgres_database(name))
    try:
        store.migrate()
    finally:
        # A template cannot be copied while anyone is connected to it.
        store.close()
    yield name
    _admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    yield from _fresh_database(postgres_template)


@pytest.fixture
def empty_postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database with no tables, for migration tests."""
    yield from _fresh_database(None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file (not yet created) in the test's own folder."""
    return f"sqlite:///{tmp_path / 'deadletter.db'}"


# -- S3: a real moto server over HTTP on loopback ----------------------------------


class MotoServer:
    """moto's S3 server in its own process. `stop()` kills it as a crash would; `start()`
    brings it back on the same port, empty: moto keeps its state in memory."""

    def __init__(self, log: Path, env: dict[str, str] | None = None) -> None:
        """`env` adds to the server's environment (moto's own settings)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env or {}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        command = [Path(sys.executable).with_name("moto_server"), "-H", "127.0.0.1"]
        with self.log.open("ab") as log:  # a file, not a pipe: moto logs every request
            self._process = subprocess.Popen(
                [*map(str, command), "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_without_aws(os.environ), **DUMMY_AWS, **self.env},
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
