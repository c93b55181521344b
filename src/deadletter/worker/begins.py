"""Begins written in the background: a slot records that a job's attempt begins and
starts its task at once; one thread writes the begins of every slot together.

Written by each slot before its task, a begin cost every no-op job a write, and on
SQLite a wait for the file's write lock while the worker's main thread held it for a
lease or a batch of outcomes (docs/benchmarks.md). The price of writing it later: a
worker lost between a task's start and the write of its begin leaves that attempt
uncharged. The store counts such a loss (`worker_losses`, migration 0024), and the
worker writes the begins of such a job before it starts (loop.py), so that a job that
kills its worker is charged from its second run on.
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
        self._pending: list[Lease] = []
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
            self._pending.append(lease)
        self._wake.set()

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
                leases, since, self._pending = self._pending, self._since, []
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
            self._pending = leases + self._pending
            self._since = since
        self._wake.set()
