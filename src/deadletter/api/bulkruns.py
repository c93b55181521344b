"""Bulk runs started over HTTP: each in its own thread of this server, controlled by id.

A run lives in the memory of the server that started it: its status, pause, resume and
cancel are asked of that server (the audit log, in the database, records every run on
any server). When the server stops, its runs are cancelled and waited for, so that each
one's stop is recorded; a run cut short by a crash leaves its start and the jobs it
moved in the audit log, and its jobs where it left them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from deadletter.errors import DeadletterError
from deadletter.ops.bulk import BulkResult, BulkRun, StopReason
from deadletter.redact import SECRETS_ONLY

log = logging.getLogger("deadletter.api")

# Runs at once per server: each holds a thread and paces its own writes.
MAX_ACTIVE = 4
# Finished runs whose status can still be asked for.
KEEP_FINISHED = 100


BulkState = Literal["running", "paused", "done", "cancelled", "halted", "failed"]
STOPPED: dict[StopReason, BulkState] = {
    StopReason.DONE: "done",
    StopReason.CANCELLED: "cancelled",
    StopReason.HALTED: "halted",
    StopReason.FAILED: "failed",
}


class TooManyRuns(DeadletterError):
    """MAX_ACTIVE runs are running already."""


@dataclass
class BulkJob:
    """A run and what became of it; `result` and `error` are set when it stops."""

    id: str
    run: BulkRun
    started_by: str
    started_at: float
    result: BulkResult | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def state(self) -> BulkState:
        if self.error is not None:
            return "failed"
        if self.result is not None:
            return STOPPED[self.result.stopped]
        return "paused" if self.run.progress.paused else "running"

    @property
    def detail(self) -> str | None:
        """Why the run stopped, without secrets: a failed run's is an exception's text,
        shown to every scope and in the dashboard."""
        detail = self.error or (self.result.detail if self.result else None)
        return SECRETS_ONLY.redact_text(detail) if detail else detail

    def execute(self) -> None:
        """Run to the end, in the run's own thread."""
        try:
            self.result = self.run.run()
        # A background thread has no caller to raise to: the error becomes the run's
        # state, and the run itself has recorded it in the audit log.
        except Exception as exc:
            log.exception("bulk run %s failed", self.id)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()


class BulkRuns:
    """The bulk runs of this server, newest last."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, BulkJob] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, run: BulkRun, *, started_by: str) -> BulkJob:
        job = BulkJob(secrets.token_hex(6), run, started_by, time.time())
        with self._lock:
            if sum(not j.done.is_set() for j in self._jobs.values()) >= MAX_ACTIVE:
                raise TooManyRuns(f"{MAX_ACTIVE} bulk runs are running on this server already")
            self._jobs[job.id] = job
            self._forget_finished()
        threading.Thread(target=job.execute, name=f"bulk-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> BulkJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[BulkJob]:
        with self._lock:
            return list(self._jobs.values())

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every run and wait for each to record its stop."""
        jobs = self.all()
        for job in jobs:
            job.run.cancel()
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.done.wait(max(0.0, deadline - time.monotonic()))

    def _forget_finished(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.done.is_set()]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]
