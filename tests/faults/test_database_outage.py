"""Workers and `serve` ride out a PostgreSQL outage: restarted fast, immediate, or
stopped for 30 s.

Real worker processes run a few thousand jobs on a server of the test's own
(tests/support/pg_server.py); the server goes away under them. Afterwards: no worker
exited, every job succeeded and ran to its end once, each worker logged the outage
once when it began and once when it ended, and work resumed within a second of the
server accepting connections. A real `deadletter serve` answers /healthz degraded while
the server is stopped and ok after, and logs the outage once when it began and once,
with its length, when it ended, without a traceback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deadletter.store import open_store
from tests.api.test_api_serve import serving
from tests.faults.fleet import OUTAGE_BEGINS, OUTAGE_ENDS, Fleet, check_outcome, run_jobs
from tests.support import pg_server
from tests.support.required import missing

JOBS = 3000

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[pg_server.PgServer]:
    if not pg_server.usable():
        missing("needs root and PostgreSQL's binaries")
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


SERVE_BEGINS = "database unreachable, /healthz answers degraded until it is back"
SERVE_ENDS = re.compile(r"database reachable again after an outage of \d+\.\d s")


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_serve_answers_degraded_through_an_outage_and_logs_it_once(
    server: pg_server.PgServer, tmp_path: Path
) -> None:
    store = open_store(server.url)
    store.migrate()
    store.close()
    log = tmp_path / "serve.log"
    with serving(server.url, tmp_path, "--no-auth", log=log) as (url, process):

        def health() -> tuple[int, object]:
            answer = httpx.get(f"{url}/healthz", trust_env=False, timeout=10)
            return answer.status_code, answer.json()

        assert health() == (200, {"status": "ok", "database": "ok"})
        dashboard = httpx.Client(base_url=url, trust_env=False, headers={"Origin": url})
        assert dashboard.post("/login", data={"next": "/"}).status_code == 303  # auth off
        server.stop("fast")
        degraded = (503, {"status": "degraded", "database": "unreachable"})
        for _ in range(10):  # every probe degraded, the API's routes unavailable
            assert health() == degraded
            stats = httpx.get(f"{url}/api/queue/dlq/stats", trust_env=False, timeout=10)
            assert (stats.status_code, dashboard.get("/").status_code) == (503, 503)
        server.start()
        # Nobody probes now: the server notices the database's return by itself.
        _until(lambda: SERVE_ENDS.search(log.read_text()) is not None, "no end logged")
        assert health() == (200, {"status": "ok", "database": "ok"})
        assert process.poll() is None
    output = log.read_text()
    assert output.count(SERVE_BEGINS) == 1, output
    assert len(SERVE_ENDS.findall(output)) == 1, output
    assert "Traceback" not in output, output
    # Those two are all the log says of it: no line per probe, request or page.
    told = [line for line in output.splitlines() if "database" in line and "HTTP/" not in line]
    assert len(told) == 2, output
