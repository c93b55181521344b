"""Enqueue in the caller's own transaction, on every backend: the job exists if and only
if the caller's business write commits, and a worker process runs it once it does."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deadletter.app import App
from deadletter.errors import InvalidArgument, PayloadError
from deadletter.store.base import CallerConnection
from tests.support import worker_process
from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[2]
ORDERS = "CREATE TABLE orders (id TEXT PRIMARY KEY)"


def connect(url: str, **options: Any) -> CallerConnection:
    """The caller's own connection to the app's database, as its driver opens it."""
    conn: CallerConnection
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), **options)
    else:
        conn = psycopg.connect(url, **options)
    return conn


def place_order(conn: CallerConnection, order: str) -> None:
    """The business write: one row of the caller's own table."""
    marks = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"INSERT INTO orders (id) VALUES ({marks})", (order,))


def orders(conn: CallerConnection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM orders").fetchall()]


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    """The app of tests.support.worker_process (task crash.work), with an orders table."""
    with connect(store_url) as conn:
        conn.execute(ORDERS)
    application = worker_process.build(store_url, str(tmp_path / "executions.log"), "app", 30)
    yield application
    application.close()


@pytest.fixture
def caller(store_url: str, app: App) -> Iterator[CallerConnection]:
    conn = connect(store_url)
    yield conn
    conn.close()


def starts(log: Path, job_id: str, timeout: float = 60) -> bool:
    """Whether the worker processes logged a start of `job_id` within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if any(line.split()[:1] == [job_id] and line.split()[4] == "start" for line in lines):
            return True
        time.sleep(0.05)
    return False


def test_a_committed_job_is_run_by_a_worker_process(
    store_url: str, tmp_path: Path, app: App, caller: CallerConnection
) -> None:
    log = tmp_path / "executions.log"
    command = [sys.executable, "-m", "tests.support.worker_process"]
    worker = subprocess.Popen([*command, store_url, str(log), "steady", "30"], cwd=ROOT)
    try:
        place_order(caller, "order-1")
        job_id = app.tasks["crash.work"].enqueue_in(caller, 1)
        assert app.store.get_job(job_id) is None  # not before the caller commits
        caller.commit()
        assert starts(log, job_id)
    finally:
        stop(worker, 30)
    assert orders(caller) == ["order-1"]


def test_a_rolled_back_job_never_exists(app: App, caller: CallerConnection) -> None:
    place_order(caller, "order-1")
    job_id = app.tasks["crash.work"].enqueue_in(caller, 1)
    caller.rollback()
    assert app.store.get_job(job_id) is None
    assert app.store.count_states() == {}
    assert app.worker(dlq=False).run(burst=True).succeeded == 0
    assert orders(caller) == []


def test_enqueue_limits_apply_and_leave_the_callers_transaction_alone(
    app: App, caller: CallerConnection
) -> None:
    work = app.tasks["crash.work"]
    place_order(caller, "order-1")
    with pytest.raises(PayloadError, match="over the limit"):
        work.enqueue_in(caller, 1, "x" * (1024 * 1024 + 1))
    with pytest.raises(PayloadError, match="not JSON"):
        work.enqueue_in(caller, {1, 2})
    caller.commit()
    assert orders(caller) == ["order-1"]
    assert app.store.count_states() == {}


def test_idempotency_keys_hold_inside_the_callers_transaction(
    app: App, caller: CallerConnection
) -> None:
    spec = app.tasks["crash.work"].spec(1).options(idempotency_key="order-1")
    earlier = app.enqueue(spec)
    again = app.enqueue_many([spec, spec.options(idempotency_key="order-2")], connection=caller)
    twice = app.enqueue(spec.options(idempotency_key="order-2"), connection=caller)
    caller.commit()
    assert again[0] == earlier
    assert twice == again[1] != earlier
    assert sum(app.store.count_states().values()) == 2


def test_a_connection_in_its_own_transaction_takes_the_job(store_url: str, app: App) -> None:
    """Autocommit with a transaction begun by the caller: the job commits with it."""
    conn = connect(store_url, **autocommit(store_url))
    try:
        if isinstance(conn, sqlite3.Connection):
            conn.execute("BEGIN")
            job_id = app.tasks["crash.work"].enqueue_in(conn, 1)
            conn.execute("ROLLBACK")
        else:
            with conn.transaction(force_rollback=True):
                job_id = app.tasks["crash.work"].enqueue_in(conn, 1)
    finally:
        conn.close()
    assert app.store.get_job(job_id) is None


def autocommit(url: str) -> dict[str, Any]:
    return {"isolation_level": None} if url.startswith("sqlite") else {"autocommit": True}


def test_a_connection_the_store_cannot_use_is_refused_by_name(
    store_url: str, app: App, tmp_path: Path, postgres_server: str
) -> None:
    """Another driver's connection, another database, autocommit outside a transaction:
    an InvalidArgument that says which, and nothing written."""
    work = app.tasks["crash.work"]
    sqlite = store_url.startswith("sqlite")
    other_driver = psycopg.connect(postgres_server) if sqlite else sqlite3.connect(":memory:")
    other_database = (
        sqlite3.connect(tmp_path / "shop.db") if sqlite else psycopg.connect(postgres_server)
    )
    committing = connect(store_url, **autocommit(store_url))
    wanted = "sqlite3.Connection" if sqlite else "psycopg.Connection"
    refused: list[tuple[Any, str]] = [
        (other_driver, f"{wanted}, not a {type(other_driver).__module__}"),
        ("postgresql://", f"{wanted}, not a builtins.str"),
        (other_database, "a job commits with your writes only in the one"),
        (committing, "autocommit mode outside a transaction"),
    ]
    try:
        for connection, problem in refused:
            with pytest.raises(InvalidArgument, match=problem):
                work.enqueue_in(connection, 1)
    finally:
        for conn in (other_driver, other_database, committing):
            conn.close()
    assert app.store.count_states() == {}
