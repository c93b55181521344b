"""Bulk requeue and abandon: a dry run first (count and sample), then a run with a
reason, watched live and paused, resumed or cancelled here or over the API (they share
the server's runs)."""

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from deadletter.api.bulkruns import BulkJob, TooManyRuns
from deadletter.api.models import BulkFilter
from deadletter.ops.bulk import BulkAction, BulkRun, plan_bulk
from deadletter.ops.filters import FailureFilter
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.pages.failures import failure_query
from deadletter.web.render import Pages

SAMPLE = 10


def narrowed(chosen: BulkFilter) -> FailureFilter:
    """The filter of a bulk action, which may not be empty here: acting on every
    failure at once is for `deadletter bulk --all`, typed on purpose."""
    found = chosen.to_filter()
    if found.is_empty:
        raise HTTPException(422, "narrow the filter: an action on every failure is for the CLI")
    return found


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store
    operate = Depends(web.actor(Scope.OPERATE))

    @api.post("/bulk/plan", response_class=HTMLResponse)
    async def plan(request: Request, operator: Annotated[Operator, operate]) -> HTMLResponse:
        """The dry run of a list's selection or filter, or of a group."""
        form = await request.form()
        action, _, target = str(form.get("do", "")).partition(":")
        if action not in ("requeue", "abandon"):
            raise HTTPException(422, "choose requeue or abandon")
        params: dict[str, Any] = {k: form.get(k) for k in form if k not in ("label", "job_id")}
        params["label"] = [str(v) for v in form.getlist("label")]
        params["job_id"] = [str(v) for v in form.getlist("job_id")] if target == "selected" else []
        if target == "selected" and not params["job_id"]:
            raise HTTPException(422, "select at least one failure first")
        try:
            query = failure_query(params, now=time.time())
        except ValidationError as exc:
            raise HTTPException(422, str(exc)) from exc
        if target == "selected":
            query = BulkFilter(job_id=query.job_id)
        chosen = BulkFilter.model_validate(query.model_dump(exclude_defaults=True))
        found = plan_bulk(store, narrowed(chosen), sample_size=SAMPLE)
        view = web.api.view(operator.caller)
        return HTMLResponse(
            pages.render(
                "plan.html",
                operator,
                page="bulk",
                action=action,
                count=found.count,
                sample=[view.failure(item) for item in found.sample],
                filter_json=chosen.model_dump_json(exclude_defaults=True),
                described=chosen.to_filter().describe(),
            )
        )

    @api.post("/bulk", response_model=None)
    def start(
        operator: Annotated[Operator, operate],
        action: Annotated[BulkAction, Form()],
        filter: Annotated[str, Form(max_length=100_000)],
        reason: Annotated[str, Form(max_length=2000)] = "",
        rate: Annotated[float, Form(gt=0, le=10_000)] = 10.0,
    ) -> Response:
        if not reason.strip():
            raise HTTPException(422, "a reason is required: it goes into the audit log")
        try:
            chosen = BulkFilter.model_validate_json(filter)
        except ValidationError as exc:
            raise HTTPException(422, str(exc)) from exc
        run = BulkRun(
            store,
            narrowed(chosen),
            action=action,
            actor=operator.caller.actor,
            reason=reason,
            policy=web.api.app.policy,
            rate=rate,
        )
        try:
            job = web.api.bulk.start(run, started_by=operator.caller.actor)
        except TooManyRuns as exc:
            raise HTTPException(409, str(exc)) from exc
        return RedirectResponse(f"/bulk#run-{job.id}", status_code=303)

    @api.get("/bulk", response_class=HTMLResponse)
    def runs(operator: Annotated[Operator, Depends(web.viewer(Scope.READ))]) -> HTMLResponse:
        view = web.api.view(operator.caller)
        shown = [(job, view.text(job.run.reason)) for job in reversed(web.api.bulk.all())]
        return HTMLResponse(pages.render("bulk.html", operator, page="bulk", runs=shown))

    def control(verb: str, act: Callable[[BulkRun], None]) -> None:
        @api.post(f"/bulk/{{run_id}}/{verb}", name=f"web_{verb}_bulk_run")
        def route(run_id: str, operator: Annotated[Operator, operate]) -> Response:
            job = _running(run_id)
            if job.done.is_set():
                raise HTTPException(409, f"bulk run {run_id} has stopped: {job.state}")
            act(job.run)
            return RedirectResponse(f"/bulk#run-{run_id}", status_code=303)

    def _running(run_id: str) -> BulkJob:
        job = web.api.bulk.get(run_id)
        if job is None:
            raise HTTPException(404, f"no bulk run {run_id} on this server")
        return job

    control("pause", BulkRun.pause)
    control("resume", BulkRun.resume)
    control("cancel", BulkRun.cancel)
    return api
