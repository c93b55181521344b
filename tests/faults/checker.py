"""The one checker of fault tests: the final state of the store and the execution journal,
sorted into the faults that must not happen. Every scenario requires all of them empty."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deadletter.store.base import Store
from tests.faults import journal
from tests.support.invariants import check_jobs


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    # Attempts recorded for a job with no start of that attempt in the journal.
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


def check(
    store: Store,
    ids: list[str],
    dead_letter_queues: list[str],
    journal_path: Path,
    exited: Sequence[str] = (),
) -> Findings:
    """`exited`: the workers that ended on their own, as the test's process group saw."""
    report = check_jobs(store, ids, dead_letter_queues)
    entries = journal.read(journal_path)
    return Findings(
        lost=report.lost,
        duplicated=report.duplicated,
        stuck=report.stuck,
        charged_unstarted=_charged_unstarted(store, ids, entries),
        started_after_takeover=_started_after_takeover(entries),
        exited=list(exited),
    )


def _charged_unstarted(store: Store, ids: list[str], entries: list[journal.Entry]) -> list[str]:
    started = {(entry.job_id, entry.attempt) for entry in entries if entry.event == "start"}
    return [
        f"{job_id}#{attempt.number}"
        for job_id in ids
        for attempt in store.attempts(job_id)
        if (job_id, attempt.number) not in started
    ]


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
