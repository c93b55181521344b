"""What else hears of a failed attempt once its outcome is written: error trackers
(Sentry, deadletter.telemetry), built by the composition root and handed to the worker."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from deadletter.model import LeasedJob
from deadletter.store.base import DeadLettered, JobOutcome, Retrying
from deadletter.worker.retry import Failure

log = logging.getLogger("deadletter.worker")


class AttemptObserver(Protocol):
    def failed(self, job: LeasedJob, failure: Failure, outcome: Retrying | DeadLettered) -> None:
        """`job`'s attempt failed with `failure`; `outcome` is what was written."""
        ...

    def close(self) -> None:
        """The worker stops: send what is waiting."""
        ...


def tell(
    observers: Sequence[AttemptObserver],
    jobs: Sequence[LeasedJob],
    failures: Sequence[Failure | None],
    outcomes: Sequence[JobOutcome],
    applied: set[str],
) -> None:
    """Each observer hears of each failed attempt whose outcome was applied. An observer
    that raises is logged and passed over: reporting never stops the worker."""
    for job, failure, outcome in zip(jobs, failures, outcomes, strict=True):
        if (
            failure is None
            or job.id not in applied
            or not isinstance(outcome, Retrying | DeadLettered)
        ):
            continue
        for observer in observers:
            try:
                observer.failed(job, failure, outcome)
            except Exception:
                log.exception("could not report the failed attempt of job %s", job.id)
