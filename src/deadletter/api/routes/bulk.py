"""Bulk requeue or abandon by filter: a dry run, then a paced run in a thread of this
server, watched and controlled by its id (see `deadletter.api.bulkruns`).

A dry run and a run take the same filter, and a run moves what its dry run counted
(jobs that are failed now by their latest failure, not abandoned). Statuses need
`read`; everything else needs `operate`.

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path

from deadletter.api.auth import Caller
from deadletter.api.bulkruns import BulkJob, TooManyRuns
from deadletter.api.context import GUARDED, NOT_FOUND, UNREADABLE, ApiContext, problem
from deadletter.api.models import (
    BulkList,
    BulkPlanResponse,
    BulkRequest,
    BulkStatus,
    DryRunRequest,
)
from deadletter.api.routing import GuardedRoute
from deadletter.ops.bulk import BulkRun, plan_bulk

# `hex` in the path (see deadletter.api.routing): `GET /api/bulk/dry-run` is then a
# method the path does not take (405), not an invalid run id (422).
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")]
BUSY: dict[int | str, dict[str, Any]] = {
    409: problem("The run has stopped already, or too many runs are running.")
}


def status_of(job: BulkJob, caller: Caller, ctx: ApiContext) -> BulkStatus:
    run, view = job.run, ctx.view(caller)
    # The filter without secrets at any scope: it may search for one.
    return BulkStatus(
        id=job.id,
        state=job.state,
        detail=view.text(job.detail),
        action=run.action,
        filter=view.value(run.filter.shown()),
        reason=view.text(run.reason) or "",
        started_by=job.started_by,
        started_at=job.started_at,
        progress=run.progress,
    )


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, prefix="/api/bulk", responses=GUARDED, tags=["bulk"])

    def running(run_id: str) -> BulkJob:
        job = ctx.bulk.get(run_id)
        if job is None:
            raise HTTPException(404, f"no bulk run {run_id} on this server")
        return job

    @api.post("/dry-run", response_model=BulkPlanResponse, responses=UNREADABLE)
    def dry_run(
        caller: Annotated[Caller, Depends(ctx.operate)], body: DryRunRequest
    ) -> BulkPlanResponse:
        """How many jobs a run with this filter would move now, and a sample of them."""
        plan = plan_bulk(
            ctx.app.store, body.filter.to_filter(), all=body.all, sample_size=body.sample_size
        )
        sample = [ctx.view(caller).failure(item) for item in plan.sample]
        return BulkPlanResponse(count=plan.count, sample=sample)

    @api.post("", response_model=BulkStatus, status_code=202, responses={**UNREADABLE, **BUSY})
    def start(caller: Annotated[Caller, Depends(ctx.operate)], body: BulkRequest) -> BulkStatus:
        """Start a paced bulk requeue or abandon; it runs on after this answers. A
        requeue halts by itself when too many of its re-driven jobs fail again."""
        run = BulkRun(
            ctx.app.store,
            body.filter.to_filter(),
            action=body.action,
            actor=caller.actor,
            reason=body.reason,
            policy=ctx.app.policy,
            all=body.all,
            rate=body.rate,
            halt_ratio=body.halt_ratio,
            halt_after=body.halt_after,
        )
        try:
            job = ctx.bulk.start(run, started_by=caller.actor)
        except TooManyRuns as exc:
            raise HTTPException(409, str(exc)) from exc
        return status_of(job, caller, ctx)

    @api.get("", response_model=BulkList)
    def runs(caller: Annotated[Caller, Depends(ctx.read)]) -> BulkList:
        """The bulk runs of this server, oldest first."""
        found = [status_of(job, caller, ctx) for job in ctx.bulk.all()]
        return BulkList(runs=found, count=len(found))

    @api.get("/{run_id:hex}", response_model=BulkStatus, responses=NOT_FOUND)
    def status(caller: Annotated[Caller, Depends(ctx.read)], run_id: RunId) -> BulkStatus:
        """Where a run is: jobs planned, moved, skipped; and why it stopped, once it has."""
        return status_of(running(run_id), caller, ctx)

    def control(verb: Literal["pause", "resume", "cancel"], act: Callable[[BulkRun], None]) -> None:
        @api.post(
            f"/{{run_id:hex}}/{verb}",
            response_model=BulkStatus,
            responses={**UNREADABLE, **NOT_FOUND, **BUSY},
            name=f"{verb}_bulk_run",
            description=f"{verb.capitalize()} a bulk run that has not stopped.",
        )
        def route(caller: Annotated[Caller, Depends(ctx.operate)], run_id: RunId) -> BulkStatus:
            job = running(run_id)
            if job.done.is_set():
                raise HTTPException(409, f"bulk run {run_id} has stopped: {job.state}")
            act(job.run)
            return status_of(job, caller, ctx)

    control("pause", BulkRun.pause)
    control("resume", BulkRun.resume)
    control("cancel", BulkRun.cancel)
    return api
