"""A worker host cut off from PostgreSQL for longer than its lease, then healed.

Three worker hosts, each a network namespace of the test's own, reach a PostgreSQL
server of the test's own in a "db" namespace over veth links (tests/support/netns.py,
tests/support/pg_server.py). One host's link goes down while it holds a batch of leases,
for five times its lease, and comes back. The checker (tests.faults.checker) requires
nothing lost, finished twice or stuck, no start of a job whose lease was taken over, and
no worker ending on its own; besides, the others took over every job the host held, and
the host, still the same process, took new leases and finished jobs after healing.
Two shorter tests pin down the connections' side of it: a call over a dead connection
fails instead of hanging, and the server ends a transaction a cut-off host left open.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from deadletter.app import App
from deadletter.model import JobState
from tests.faults import dead_connection, journal, worker
from tests.faults.conftest import ROOT, Fleet
from tests.faults.fleet import wait_until
from tests.support import netns, pg_server
from tests.support.required import missing

JOBS = 2000
LEASE = 2.0
CUT = 5 * LEASE
HOSTS = 3
HANG = 60.0

Probe = Callable[[str], subprocess.Popen[str]]

pytestmark = pytest.mark.slow


@pytest.fixture
def network() -> Iterator[netns.Network]:
    if not (netns.usable() and pg_server.usable()):
        missing("needs root, iproute2 and PostgreSQL's binaries")
    with netns.network(HOSTS) as made:
        yield made


@pytest.fixture
def server(network: netns.Network) -> Iterator[pg_server.PgServer]:
    with pg_server.pg_server(netns.DB_ADDRESS, network.db) as started:
        yield started


@pytest.fixture
def fleet(server: pg_server.PgServer, tmp_path: Path) -> Iterator[Fleet]:
    group = Fleet(server.url, tmp_path)
    yield group
    group.kill_all()


def _held_by(app: App, pid: int) -> set[str]:
    """Jobs leased by the worker of process `pid` (its name is host:pid:suffix)."""
    running = app.store.list_jobs(queue=worker.QUEUE, state=JobState.RUNNING, limit=JOBS)
    return {job.id for job in running if (job.lease_owner or "").split(":")[1:2] == [str(pid)]}


def _settled(app: App) -> bool:
    return all(state.is_terminal for _queue, state in app.store.count_states())


def _cut_off(network: netns.Network, app: App, pid: int) -> tuple[set[str], set[str], float]:
    """Cut host 0, whose worker is `pid`, off for CUT seconds; return the jobs it held,
    those of them still its own just before healing, and when it was healed."""
    network.cut(0)
    # What it held once the server has done with anything the host had sent before.
    time.sleep(0.5)
    held = _held_by(app, pid)
    time.sleep(CUT - 0.5)
    still_held = held & _held_by(app, pid)
    network.heal(0)
    return held, still_held, time.time()


def test_a_host_cut_off_past_its_lease(
    network: netns.Network, server: pg_server.PgServer, fleet: Fleet
) -> None:
    app = worker.build(server.local_url, fleet.folder, LEASE)
    app.store.migrate()
    task = app.tasks["faults.work"]
    ids = app.enqueue_many(task.spec(n, "", 0.02) for n in range(JOBS))
    victim, *_ = [fleet.start(lease=LEASE, netns=host) for host in network.hosts]
    wait_until(lambda: bool(_held_by(app, victim.pid)), 30, "the host to lease jobs")
    # A begin that the server applied and whose answer the cut lost leaves an attempt
    # charged that the host never started (checker.START_WINDOW): the cut is its fault.
    fleet.faulted[victim.pid].append(time.time())
    held, still_held, healed = _cut_off(network, app, victim.pid)
    wait_until(lambda: _settled(app), 60, "every job to end")
    fleet.kill_all()

    assert fleet.check(app, ids, set()).problems == {}
    # Expired while it was away, its leases were taken over (reclaimed by the others).
    assert held and not still_held, "the others did not take over what the host held"
    after = [e for e in journal.read(fleet.journal) if e.pid == victim.pid and e.leased_at > healed]
    assert {e.event for e in after} & {"ok", "fail"}, "the host finished nothing after healing"
    app.close()


@pytest.fixture
def probe(network: netns.Network, server: pg_server.PgServer) -> Iterator[Probe]:
    """Start tests.faults.dead_connection on host 0: probe(how) returns it once ready."""
    started: list[subprocess.Popen[str]] = []

    def start(how: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "tests.faults.dead_connection", server.url, how]
        proc = subprocess.Popen(
            [*netns.inside(network.hosts[0]), *command],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_a_call_over_a_dead_connection_fails_instead_of_hanging(
    network: netns.Network, probe: Probe
) -> None:
    """The operating system gives up on a connection to a silent peer after 15 minutes
    of retransmissions; till then a worker whose host was cut off waits in a store call
    that holds its whole loop, says nothing of an outage, and after healing waits for
    the next retransmission, minutes apart by then. The call must fail instead
    (StoreUnavailable: the worker logs the outage and reconnects); HANG bounds a hang,
    not how fast it fails."""
    caller = probe("call")
    network.cut(0)
    ended, _ = caller.communicate("go\n", timeout=HANG)
    assert ended == "StoreUnavailable\n"


def test_the_server_ends_a_transaction_left_open_by_a_cut_off_host(
    network: netns.Network, server: pg_server.PgServer, probe: Probe
) -> None:
    """A transaction open when its host's network broke holds its locks until the server
    ends the session, by default hours later; a worker's holds the rows of its leases,
    which the others' reclaim (FOR UPDATE SKIP LOCKED) would pass over meanwhile. The
    server must end it, and the test's own session get the lock within HANG."""
    probe("lock")
    network.cut(0)
    with psycopg.connect(server.local_url, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{HANG:g}s'")
        conn.execute("SELECT pg_advisory_lock(%s)", (dead_connection.LOCK,))
