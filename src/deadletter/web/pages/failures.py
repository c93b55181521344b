"""The failure list (every filter of the API, in the URL; keyset pages; selection for a
bulk action) and one failure's details with its actions."""

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from deadletter.api.models import FailureQuery
from deadletter.model import ErrorClass
from deadletter.ops import dashboard, failures, recovery
from deadletter.ops.recovery import ActionResult
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.render import Pages

# The list's time presets: `within=24h` means failed in the 24 hours before the request.
WITHIN = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
FILTER_FIELDS = ("queue", "task", "error_class", "rule", "group", "text", "since", "until")
PAGE_SIZE = 50


def failure_query(params: dict[str, Any], *, now: float) -> FailureQuery:
    """The API's filter from the page's parameters (`within` becomes `since`); a
    ValidationError names what is wrong."""
    values = {k: params[k] for k in FILTER_FIELDS if params.get(k) not in (None, "")}
    within = params.get("within") or ""
    if within in WITHIN and "since" not in values:
        values["since"] = now - WITHIN[within]
    labels = [label for label in params.get("label", []) if label.strip()]
    job_ids = [job_id for job_id in params.get("job_id", []) if job_id.strip()]
    return FailureQuery.model_validate({**values, "label": labels, "job_id": job_ids})


def query_params(request: Request) -> dict[str, Any]:
    """The query string as the filter reads it: lists for the repeatable fields."""
    q = request.query_params
    params: dict[str, Any] = {k: q.get(k) for k in (*FILTER_FIELDS, "within")}
    params["label"] = q.getlist("label")
    params["job_id"] = q.getlist("job_id")
    return params


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store

    @api.get("/failures", response_class=HTMLResponse)
    def failure_list(
        request: Request,
        operator: Annotated[Operator, Depends(web.viewer(Scope.READ))],
        cursor: str | None = None,
    ) -> HTMLResponse:
        params = query_params(request)
        error = None
        items: list[failures.FailureItem] = []
        next_cursor = None
        try:
            query = failure_query(params, now=time.time())
            page = failures.list_failures(store, query.to_filter(), limit=PAGE_SIZE, cursor=cursor)
            view = web.api.view(operator.caller)
            items = [view.failure(item) for item in page.items]
            next_cursor = page.next_cursor
        except ValidationError as exc:
            error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor" and v]
        return HTMLResponse(
            pages.render(
                "failures.html",
                operator,
                page="failures",
                params=params,
                items=items,
                error=error,
                next_cursor=next_cursor,
                cursor=cursor,
                kept=kept,
                classes=[c.value for c in ErrorClass],
                within=list(WITHIN),
            )
        )

    @api.get("/failures/{job_id}", response_class=HTMLResponse)
    def details(
        job_id: str,
        operator: Annotated[Operator, Depends(web.viewer(Scope.READ))],
        done: str | None = None,
    ) -> HTMLResponse:
        found = failures.failure_details(store, web.api.blobs, job_id)
        if found is None:
            raise HTTPException(404, f"no failed job {job_id}")
        shown = web.api.view(operator.caller).details(found)
        return HTMLResponse(
            pages.render(
                "details.html",
                operator,
                page="failures",
                d=shown,
                fates=dashboard.route_fate(store, found.failure),
                done=done,
                can_edit=operator.can(Scope.ADMIN),
            )
        )

    @api.post("/failures/{job_id}/requeue", response_model=None)
    def requeue(
        job_id: str,
        operator: Annotated[Operator, Depends(web.actor(Scope.OPERATE))],
        reason: Annotated[str, Form(max_length=2000)] = "",
        payload: Annotated[str, Form(max_length=1_000_000)] = "",
    ) -> Response:
        # Only an admin sees the payload as stored; an edit of a redacted one would
        # write the redaction into the job.
        if payload and not operator.can(Scope.ADMIN):
            raise HTTPException(403, "editing a payload needs the admin scope")
        corrected = _parsed(payload) if payload else None
        result = recovery.requeue(
            store,
            job_id,
            actor=operator.caller.actor,
            reason=reason,
            policy=web.api.app.policy,
            payload_limit=web.api.app.settings.payload_limit_bytes,
            payload=corrected,
        )
        return _after(result, job_id)

    @api.post("/failures/{job_id}/abandon", response_model=None)
    def abandon(
        job_id: str,
        operator: Annotated[Operator, Depends(web.actor(Scope.OPERATE))],
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        result = recovery.abandon(store, job_id, actor=operator.caller.actor, reason=reason)
        return _after(result, job_id)

    return api


def _parsed(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise HTTPException(422, f"the payload is not JSON: {exc}") from exc


def _after(result: ActionResult, job_id: str) -> Response:
    """Back to the details, which say what the action did (or why it did not)."""
    if result.outcome is recovery.Outcome.NOT_FOUND:
        raise HTTPException(404, result.message)
    if not result.done:
        raise HTTPException(409, result.message)
    return RedirectResponse(f"/failures/{job_id}?done={result.outcome.value}", status_code=303)
