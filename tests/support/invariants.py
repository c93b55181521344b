"""The checker used by crash tests: every job sorted into lost, duplicated, stuck or ok."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from deadletter.model import JobState
from deadletter.store.base import Store

TERMINAL = (JobState.SUCCEEDED, JobState.DEAD_LETTERED, JobState.FAILED)


@dataclass
class Report:
    ok: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)

    @property
    def problems(self) -> dict[str, list[str]]:
        found = {"lost": self.lost, "duplicated": self.duplicated, "stuck": self.stuck}
        return {name: ids[:10] for name, ids in found.items() if ids}


def check_jobs(store: Store, ids: list[str], dead_letter_queues: list[str]) -> Report:
    """Lost: not in the store, or dead-lettered (or failed, once its letter was handled)
    without exactly one dead letter. Duplicated: two terminal records (succeeded and
    dead-lettered, or two dead letters). Stuck: not terminal and no live lease.
    Ok: everything else."""
    letters = Counter(
        letter.payload["job_id"]
        for queue in dead_letter_queues
        for letter in store.list_jobs(queue=queue, limit=10_000_000)
    )
    report = Report()
    now = time.time()
    for job_id in ids:
        job = store.get_job(job_id)
        if job is None:
            report.lost.append(job_id)
        elif letters[job_id] > 1 or (job.status is JobState.SUCCEEDED and letters[job_id]):
            report.duplicated.append(job_id)
        elif job.status in (JobState.DEAD_LETTERED, JobState.FAILED) and letters[job_id] != 1:
            report.lost.append(job_id)
        elif job.status in TERMINAL or (
            job.status is JobState.RUNNING and (job.lease_expires_at or 0) > now
        ):
            report.ok.append(job_id)
        else:
            report.stuck.append(job_id)
    return report
