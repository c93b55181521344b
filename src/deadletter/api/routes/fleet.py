"""The fleet: queues (paused or not, their jobs by state, their consumers) and the live
workers; cancelling jobs (waiting or running). Reading needs `read`; pausing, resuming and
cancelling need `operate`, with a reason for the audit log.

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from deadletter.api.auth import Caller
from deadletter.api.context import GUARDED, UNREADABLE, ApiContext
from deadletter.api.models import (
    CancelRequest,
    PauseRequest,
    PauseResponse,
    QueueName,
    QueuesResponse,
    WorkersResponse,
)
from deadletter.api.routing import GuardedRoute
from deadletter.ops import fleet
from deadletter.ops.cancel import Cancellation, cancel


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, prefix="/api", responses=GUARDED, tags=["fleet"])
    gone_after = ctx.app.settings.worker.gone_after_seconds

    @api.get("/queues", response_model=QueuesResponse)
    def queues(caller: Annotated[Caller, Depends(ctx.read)]) -> Any:
        """Every queue that holds jobs, is paused or has a live consumer: its jobs by
        state, whether it is paused (by whom, when, why), and the workers consuming it."""
        views = fleet.queues(ctx.app.store, gone_after=gone_after)
        return {"queues": [fleet.queue_json(view) for view in views]}

    @api.post("/queues/{queue}/pause", response_model=PauseResponse, responses=UNREADABLE)
    def pause(
        caller: Annotated[Caller, Depends(ctx.operate)], queue: QueueName, body: PauseRequest
    ) -> Any:
        """Stop workers taking the queue's jobs: enqueueing goes on, running jobs finish,
        the pause holds across restarts. Pause `<queue>-dlq` to stop handling its dead
        letters while they are still captured. Pausing a paused queue changes nothing
        (`changed` false)."""
        result = fleet.pause_queue(ctx.app.store, queue, actor=caller.actor, reason=body.reason)
        return fleet.result_json(result)

    @api.post("/queues/{queue}/resume", response_model=PauseResponse, responses=UNREADABLE)
    def resume(
        caller: Annotated[Caller, Depends(ctx.operate)], queue: QueueName, body: PauseRequest
    ) -> Any:
        """Let workers take the queue's jobs again (`changed` false if it was not paused)."""
        result = fleet.resume_queue(ctx.app.store, queue, actor=caller.actor, reason=body.reason)
        return fleet.result_json(result)

    @api.post("/jobs/cancel", response_model=Cancellation, responses=UNREADABLE)
    def cancel_jobs(caller: Annotated[Caller, Depends(ctx.operate)], body: CancelRequest) -> Any:
        """Cancel jobs that wait to run (queued, scheduled, waiting for a retry) or run,
        given by id and/or matching a queue and a task, the soonest to run first, one
        audit record each. A waiting job is removed with its attempts (`jobs`); a
        running one is asked to stop (`stopping`): its worker tells it at its next
        heartbeat and removes it when its run ends. `dry_run` lists them and changes
        nothing. Ids of jobs that ran, running dead letters, or jobs with a history (a
        recorded failure, a requeue, another job system's origin) come back in
        `refused` with why."""
        return cancel(
            ctx.app.store,
            job_ids=body.job_ids,
            queue=body.queue,
            task=body.task,
            actor=caller.actor,
            reason=body.reason,
            dry_run=body.dry_run,
            limit=body.limit,
        )

    @api.get("/workers", response_model=WorkersResponse)
    def workers(caller: Annotated[Caller, Depends(ctx.read)]) -> Any:
        """Live workers (a heartbeat within `[worker] gone_after_seconds`), each with the
        jobs its slots run now."""
        found = fleet.live_workers(ctx.app.store, gone_after=gone_after)
        now = time.time()
        items = [fleet.worker_json(worker, now=now) for worker in found]
        return {"workers": items, "count": len(items)}

    return api
