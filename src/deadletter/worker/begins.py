"""Begins written in the background: a slot records that a job's attempt begins and
starts its task at once; one thread writes the begins of every slot together.

Written by each slot before its task, a begin cost every no-op job a write, and on
SQLite a wait for the file's write lock while the worker's main thread held it for a
lease or a batch of outcomes (docs/benchmarks.md). The price of writing it later: a
worker lost between a task's start and the write of its begin leaves that attempt
uncharged. The store counts such a loss (`worker_losses`, migration 0024), and the
worker writes the begins of such a job before it starts (loop.py), so that a job that
kills its worker is charged from its second run on.

A begin whose task ends before the writer takes it up is not written (`ended`): its
outcome is written within the worker's flush interval, and only a worker lost before
then would have charged it; such a loss leaves it uncharged like any begin not yet
written. A no-op job's begin was a third more of PostgreSQL's work a job, and its row
locks made the outcome's write wait (docs/benchmarks.md, "Begins of tasks that ended").
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from deadletter.errors import StoreUnavailable
from deadletter.model import Lease
from deadletter.store.base import Store

log = logging.getLogger("deadletter.worker")

# How long a stopping worker waits for the writer's current write.
CLOSE_WAIT = 5.0
# Retries of a write the store refused (an outage, which the job loop logs): from the
# first pause, doubled up to the last.
FIRST_PAUSE = 0.05
LAST_PAUSE = 1.0


class Begins:
    """Writes recorded begins in batches; `lost` receives the leases it found no longer
    ours (the job was taken over, removed, or finished meanwhile)."""

    def __init__(self, store: Store) -> None:
        self.lost: queue.SimpleQueue[Lease] = queue.SimpleQueue()
        self._store = store
        # By job id, so that a task that ends takes its begin back at once.
        self._pending: dict[str, Lease] = {}
        # When the oldest pending begin was recorded: the time written for the batch.
        self._since = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deadletter-begins", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def record(self, lease: Lease) -> None:
        """That the attempt of `lease` begins now; written soon, not waited for."""
        with self._lock:
            if not self._pending:
                self._since = time.time()
            self._pending[lease.job_id] = lease
        self._wake.set()

    def ended(self, lease: Lease) -> None:
        """That the task of `lease` ended: its begin is not written if not taken up yet."""
        with self._lock:
            if self._pending.get(lease.job_id) == lease:
                del self._pending[lease.job_id]

    def close(self) -> None:
        """Stop writing. Begins not written are not needed by then: the jobs' outcomes
        are written, or their leases given back."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(CLOSE_WAIT)

    def _run(self) -> None:
        pause = FIRST_PAUSE
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                leases, since = list(self._pending.values()), self._since
                self._pending = {}
            if not leases:
                continue
            try:
                for lease in self._store.begin(leases, now=since):
                    self.lost.put(lease)
                pause = FIRST_PAUSE
            except StoreUnavailable:
                self._put_back(leases, since)
                self._stop.wait(pause)
                pause = min(pause * 2, LAST_PAUSE)
            except Exception:  # a fault of its own: these attempts go uncharged if lost
                log.exception("could not write that %d attempts began", len(leases))

    def _put_back(self, leases: list[Lease], since: float) -> None:
        with self._lock:
            self._pending = {lease.job_id: lease for lease in leases} | self._pending
            self._since = since
        self._wake.set()
