"""The execution journal of fault tests: tasks append one line per start and finish.

A line is `job_id token attempt leased_at pid event time`, written with one O_APPEND write (atomic
for a line this short), so it survives the SIGKILL of its writer and needs no lock. The
lease token tells executions of the same attempt apart (a lease given back uncharged is
leased again with the same attempt number and a new token); `leased_at` is when the
lease was taken (the job's `started_at`), which dates a takeover.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from deadletter.worker.slots import current_job


@dataclass(frozen=True, slots=True)
class Entry:
    job_id: str
    token: int
    attempt: int
    leased_at: float
    pid: int
    event: str
    at: float


def note(path: str, event: str) -> None:
    """Append `event` for the job running in this context."""
    job = current_job.get()
    lease = f"{job.id} {job.token} {job.attempt} {job.started_at:.6f}"
    line = f"{lease} {os.getpid()} {event} {time.time():.6f}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def read(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        job_id, token, attempt, leased, pid, event, at = line.split()
        entry = Entry(job_id, int(token), int(attempt), float(leased), int(pid), event, float(at))
        entries.append(entry)
    return entries
