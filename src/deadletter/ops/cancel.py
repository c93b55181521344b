"""Cancel jobs: by id, or by queue and task, with a dry run.

One transaction reads the cancellable jobs, removes those that wait, asks the runs of
those that run to stop, and writes one audit record each (store/cancel.py says which
jobs may go and why the others stay). A running job is stopped cooperatively: its
worker learns of the request at its next heartbeat and tells the task
(`current_job().cancel_requested`; an async task is cancelled); once the run ends,
whether it raised or returned, the worker removes the job. A run that ends before its
worker learned of the request ends as it would have (succeeded, or failed and retried
as usual). A job a worker leases meanwhile is not removed: the removal checks its
status again, and the run of a job that started is left to finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from deadletter.errors import InvalidRequest
from deadletter.ops import audit
from deadletter.ops.filters import check_limit, operator_text, required
from deadletter.store import cancel as store_cancel
from deadletter.store.base import Store
from deadletter.store.cancel import WaitingJob as WaitingJob
from deadletter.store.failures import Execute
from deadletter.store.query import Clause

HISTORY = "has a history (a recorded failure, a requeue or another job system's origin)"
ONLY = "only a waiting or running job can be cancelled"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A job asked for by id that was not acted on (cancelled, handed back), and why."""

    job_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The waiting jobs cancelled, the running jobs asked to stop (or, on a dry run, those
    that would be) and the ids refused."""

    dry_run: bool
    jobs: list[WaitingJob]
    stopping: list[WaitingJob]
    refused: list[Refusal]


def cancel(
    store: Store,
    *,
    job_ids: list[str],
    queue: str | None = None,
    task: str | None = None,
    actor: str,
    reason: str,
    dry_run: bool = False,
    limit: int = 1000,
) -> Cancellation:
    """Cancel the jobs given by id and/or matching `queue` and `task` (at most `limit`,
    the soonest to run first): remove those that wait, ask those that run to stop; on a
    dry run, say which without changing anything. A filter is required: an empty one
    would cancel every job."""
    clauses = _clauses(job_ids, queue, task)
    why = operator_text(required(reason, "reason"))
    who = required(actor, "actor")
    with store.transaction() as execute:
        found = store_cancel.cancellable(execute, clauses, check_limit(limit))
        waiting = [job for job in found if job.status != "running"]
        running = [job for job in found if job.status == "running"]
        if not dry_run:
            waiting = [
                job for job in waiting if _audited(execute, job, who, why, store_cancel.remove)
            ]
            running = [
                job for job in running if _audited(execute, job, who, why, store_cancel.ask_to_stop)
            ]
        refused = _refusals(execute, job_ids, [*waiting, *running])
        return Cancellation(dry_run, waiting, running, refused)


def _clauses(job_ids: list[str], queue: str | None, task: str | None) -> list[Clause]:
    clauses = [store_cancel.with_ids(job_ids)] if job_ids else []
    if queue is not None:
        clauses.append(store_cancel.of_queue(queue))
    if task is not None:
        clauses.append(store_cancel.of_task(task))
    if not clauses:
        raise InvalidRequest("job", "give job ids, or a queue and/or a task to cancel by")
    return clauses


def _audited(
    execute: Execute,
    job: WaitingJob,
    actor: str,
    reason: str,
    act: Callable[[Execute, str], bool],
) -> bool:
    """`act` on the job, and one audit record if it applied (a running job: the request)."""
    if not act(execute, job.id):
        return False
    details = {k: v for k, v in asdict(job).items() if k != "id"}
    audit.record(
        execute,
        at=time.time(),
        actor=actor,
        action=audit.AuditAction.CANCEL,
        target=job.id,
        reason=reason,
        details=details,
    )
    return True


def _refusals(execute: Execute, job_ids: list[str], jobs: list[WaitingJob]) -> list[Refusal]:
    done = {job.id for job in jobs}
    return [_refusal(execute, job_id) for job_id in dict.fromkeys(job_ids) if job_id not in done]


def _refusal(execute: Execute, job_id: str) -> Refusal:
    status = store_cancel.status(execute, job_id)
    if status is None:
        return Refusal(job_id, f"no job {job_id}")
    if status in ("queued", "retrying", "running"):
        message = f"job {job_id} is {status} but {HISTORY}, or is a dead letter"
        return Refusal(job_id, f"{message}: not cancelled")
    return Refusal(job_id, f"job {job_id} is {status}: {ONLY}")
