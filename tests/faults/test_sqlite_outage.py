"""Workers ride out a SQLite database they cannot write for a while: locked by another
connection's write transaction, or on a full disk (a small tmpfs the test mounts).

Real worker processes run a few thousand jobs. Afterwards: no worker exited, every job
succeeded and ran to its end once, and work resumed within a second of the database
being writable again; a full disk is logged once when it begins and once when it ends.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.fleet import OUTAGE_BEGINS, OUTAGE_ENDS, Fleet, check_outcome, run_jobs
from tests.support.tmpfs import tmpfs

JOBS = 3000
# Written before the jobs run: freeing it frees room even if the database and its WAL
# have filled the disk on their own by then.
BALLAST = 8 * 2**20

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs, mounted for the test and removed after it."""
    with tmpfs(tmp_path / "disk", "64m") as mount:
        yield mount


def test_workers_wait_for_a_lock_held_by_another_connection(tmp_path: Path) -> None:
    fleet = Fleet(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path)
    try:
        ids = run_jobs(fleet, JOBS)
        other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        time.sleep(5)
        other.execute("COMMIT")
        released = time.time()
        other.close()
        for log in check_outcome(fleet, ids, released):
            assert "Traceback" not in log, log
    finally:
        fleet.stop()


def fill(filler: Path) -> None:
    """Grow `filler` until its filesystem has no free byte left."""
    with filler.open("ab", buffering=0) as out:
        try:
            while True:
                out.write(bytes(65536))
        except OSError:  # ENOSPC: the disk is full
            pass


def test_workers_ride_out_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(bytes(BALLAST))
    fleet = Fleet(f"sqlite:///{small_disk / 'jobs.db'}", tmp_path)
    try:
        ids = run_jobs(fleet, JOBS)
        fill(filler)
        time.sleep(3)
        filler.unlink()
        freed = time.time()
        for log in check_outcome(fleet, ids, freed):
            assert log.count(OUTAGE_BEGINS) == 1, log
            assert "is on a full disk" in log, log
            assert log.count(OUTAGE_ENDS) == 1, log
            assert "Traceback" not in log, log
    finally:
        fleet.stop()
