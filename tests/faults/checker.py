"""The one checker of fault tests: the final state of the store and the execution journal,
sorted into the faults that must not happen. Every scenario requires all of them empty."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deadletter.model import WORKER_LOST, Attempt
from deadletter.store.base import Store
from tests.faults import journal
from tests.support.invariants import check_jobs


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    # Attempts recorded for a job with no start of that attempt in the journal (but for
    # those that began in the start window of a worker the test killed or froze).
    charged_unstarted: list[str] = field(default_factory=list)
    # Starts of a job under a lease another worker had already taken over.
    started_after_takeover: list[str] = field(default_factory=list)
    # Worker processes that ended without the test ending them: "pid exit-code".
    exited: list[str] = field(default_factory=list)

    @property
    def problems(self) -> dict[str, list[str]]:
        """Each non-empty finding with its count and its first ids."""
        found = {name: ids for name, ids in vars(self).items() if ids}
        return {name: [f"{len(ids)} in all", *ids[:10]] for name, ids in found.items()}


# A worker records that an attempt begins (store `begin`) just before its task's first
# line, which journals the start: a worker killed or frozen in between (by the test, or
# by a job on another slot that kills its worker, begun in the same instant) leaves a
# charged attempt that the journal does not show started. Such an attempt is excused
# when it began at most this long before its worker was killed or frozen (a loaded
# machine can hold a thread back that long), or at most SIGNAL_DELAY after: a death is
# dated when it was asked for (the test's kill, a job's journalled start), and the worker
# goes on until the signal lands. Any other charged attempt is a finding.
START_WINDOW = 0.25
SIGNAL_DELAY = 0.05


def check(
    store: Store,
    ids: list[str],
    dead_letter_queues: list[str],
    journal_path: Path,
    exited: Sequence[str] = (),
    faulted: Mapping[int, Sequence[float]] | None = None,
) -> Findings:
    """`exited`: the workers that ended on their own, as the test's process group saw;
    `faulted`: when the test killed or froze each worker process, by pid."""
    report = check_jobs(store, ids, dead_letter_queues)
    entries = journal.read(journal_path)
    return Findings(
        lost=report.lost,
        duplicated=report.duplicated,
        stuck=report.stuck,
        charged_unstarted=_charged_unstarted(store, ids, entries, faulted or {}),
        started_after_takeover=_started_after_takeover(entries),
        exited=list(exited),
    )


def _charged_unstarted(
    store: Store,
    ids: list[str],
    entries: list[journal.Entry],
    faulted: Mapping[int, Sequence[float]],
) -> list[str]:
    started = {(entry.job_id, entry.attempt) for entry in entries if entry.event == "start"}
    return [
        f"{job_id}#{attempt.number} {attempt.error_type} by {attempt.worker}"
        f" began {attempt.started_at:.4f} (faults {faulted.get(_pid(attempt.worker), [])})"
        for job_id in ids
        for attempt in store.attempts(job_id)
        if (job_id, attempt.number) not in started and not _in_start_window(attempt, faulted)
    ]


def _in_start_window(attempt: Attempt, faulted: Mapping[int, Sequence[float]]) -> bool:
    """A lost worker's attempt that began just before the test killed or froze it."""
    if attempt.error_type != WORKER_LOST:
        return False
    times = faulted.get(_pid(attempt.worker), ())
    return any(-SIGNAL_DELAY <= at - attempt.started_at <= START_WINDOW for at in times)


def _pid(worker: str) -> int:
    """The process of a worker, from its name (host:pid:suffix); 0 if it has none."""
    parts = worker.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _started_after_takeover(entries: list[journal.Entry]) -> list[str]:
    """Starts under a lease when a newer lease of the same job had already been taken
    (as the newer lease's own journal lines date it)."""
    by_job: dict[str, list[journal.Entry]] = defaultdict(list)
    for entry in entries:
        by_job[entry.job_id].append(entry)
    late = []
    for job_id, lines in by_job.items():
        taken = {entry.token: entry.leased_at for entry in lines}
        for start in (entry for entry in lines if entry.event == "start"):
            newer = [at for token, at in taken.items() if token > start.token]
            if newer and min(newer) < start.at:
                late.append(f"{job_id} token {start.token} pid {start.pid}")
    return late
