"""Workers ride out a PostgreSQL outage: restarted fast, immediate, or stopped for 30 s.

Real worker processes run a few thousand jobs on a server of the test's own
(tests/support/pg_server.py); the server goes away under them. Afterwards: no worker
exited, every job succeeded and ran to its end once, each worker logged the outage
once when it began and once when it ended, and work resumed within a second of the
server accepting connections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.fleet import OUTAGE_BEGINS, OUTAGE_ENDS, Fleet, check_outcome, run_jobs
from tests.support import pg_server

JOBS = 3000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not pg_server.usable(), reason="needs root and PostgreSQL's binaries"),
]


@pytest.fixture
def server() -> Iterator[pg_server.PgServer]:
    with pg_server.pg_server() as started:
        yield started


@pytest.fixture
def fleet(server: pg_server.PgServer, tmp_path: Path) -> Iterator[Fleet]:
    group = Fleet(server.url, tmp_path)
    yield group
    group.stop()


def _outage(server: pg_server.PgServer, how: str) -> float:
    """Make the outage; return when the server accepted connections again."""
    if how == "stopped for 30 s":
        server.stop("fast")
        time.sleep(30)
        return server.start()
    return server.restart(how.removeprefix("restarted "))


@pytest.mark.parametrize("how", ["restarted fast", "restarted immediate", "stopped for 30 s"])
def test_workers_ride_out_a_postgresql_outage(
    server: pg_server.PgServer, fleet: Fleet, how: str
) -> None:
    ids = run_jobs(fleet, JOBS)
    ready = _outage(server, how)
    for log in check_outcome(fleet, ids, ready):
        # A restart shorter than a pooled connection's wait may pass unnoticed; an
        # outage noticed is logged once when it begins and once when it ends.
        began = log.count(OUTAGE_BEGINS)
        assert began == log.count(OUTAGE_ENDS), log
        assert began == 1 if how.startswith("stopped") else began <= 1, log
        assert "Traceback" not in log, log
