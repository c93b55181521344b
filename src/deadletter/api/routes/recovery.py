"""Acting on one failure: requeue, abandon, review; re-classifying all of them; handing
parked dead letters back to the handler; and the queues that wait for them.

Reading the recovery queue and the review log needs `read`; acting needs `operate`.
An action that does not apply now (a second click on requeue, a job abandoned since)
answers 409 with the action's result, whose `outcome` says why.

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

from dataclasses import asdict, replace
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException
from fastapi.responses import JSONResponse

from deadletter.api.auth import Caller
from deadletter.api.context import GUARDED, NOT_FOUND, REFUSED, UNREADABLE, ApiContext
from deadletter.api.models import (
    AbandonRequest,
    Cursor,
    JobId,
    Limit,
    ReclassifyRequest,
    RecoveryPage,
    RehandleRequest,
    RequeueRequest,
    ReviewPage,
    ReviewRequest,
)
from deadletter.api.routing import GuardedRoute
from deadletter.ops import recovery, review
from deadletter.ops.reclassify import Reclassification, reclassify
from deadletter.ops.recovery import ActionResult, Outcome
from deadletter.ops.rehandle import Rehandling, rehandle

ACTED = {**UNREADABLE, **NOT_FOUND, **REFUSED}
REVIEWED = {"open": False, "reviewed": True, "all": None}


def answer(result: ActionResult) -> ActionResult | JSONResponse:
    """200 with the result when the action was done; 404 or 409 when it was not."""
    if result.outcome is Outcome.NOT_FOUND:
        raise HTTPException(404, result.message)
    if not result.done:
        return JSONResponse(asdict(result), status_code=409)
    return result


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, prefix="/api", responses=GUARDED, tags=["recovery"])

    @api.get("/recovery", response_model=RecoveryPage)
    def recovery_queue(
        caller: Annotated[Caller, Depends(ctx.read)],
        status: Literal["pending", "requeued", "recovered", "abandoned"] | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RecoveryPage:
        """The recovery queue, most recently changed first; of one status if given."""
        page = recovery.recovery_queue(ctx.app.store, status=status, limit=limit, cursor=cursor)
        entries = [ctx.view(caller).recovery(entry) for entry in page.items]
        return RecoveryPage(recovery=entries, count=len(entries), next_cursor=page.next_cursor)

    @api.post("/failures/{job_id}/requeue", response_model=ActionResult, responses=ACTED)
    def requeue(
        caller: Annotated[Caller, Depends(ctx.operate)],
        job_id: JobId,
        body: Annotated[RequeueRequest | None, Body()] = None,
    ) -> ActionResult | JSONResponse:
        """Put a failed job back on its queue with a fresh retry budget, once: a second
        requeue of the same failure answers 409 `already_requeued`. A corrected payload
        replaces the job's (the old one is kept)."""
        asked = body or RequeueRequest()
        payload = asked.payload.model_dump() if asked.payload else None
        result = recovery.requeue(
            ctx.app.store,
            job_id,
            actor=caller.actor,
            reason=asked.reason,
            policy=ctx.app.policy,
            payload_limit=ctx.app.settings.payload_limit_bytes,
            payload=payload,
        )
        return answer(result)

    @api.post("/failures/{job_id}/abandon", response_model=ActionResult, responses=ACTED)
    def abandon(
        caller: Annotated[Caller, Depends(ctx.operate)], job_id: JobId, body: AbandonRequest
    ) -> ActionResult | JSONResponse:
        """Give up on a failed job, with a reason: it stays failed, and its recovery
        row becomes `abandoned`."""
        return answer(
            recovery.abandon(ctx.app.store, job_id, actor=caller.actor, reason=body.reason)
        )

    @api.post("/failures/reclassify", response_model=Reclassification, responses=UNREADABLE)
    def reclassify_failures(
        caller: Annotated[Caller, Depends(ctx.operate)], body: ReclassifyRequest
    ) -> Reclassification:
        """Classify the current failures (the latest of each failed job not abandoned)
        again by the rules of the server's config. `dry_run` lists those whose class
        would change and the counts by `OLD->NEW`, and changes nothing; otherwise each
        moves to its new class's route, one audit record each, and no notification or
        alert already raised for a failure is raised again."""
        return reclassify(
            ctx.app.store,
            ctx.app.dlq.handler,
            actor=caller.actor,
            reason=body.reason,
            dry_run=body.dry_run,
        )

    @api.post("/dlq/rehandle", response_model=Rehandling, responses=UNREADABLE)
    def rehandle_letters(
        caller: Annotated[Caller, Depends(ctx.operate)], body: RehandleRequest
    ) -> Rehandling:
        """Hand parked dead letters (those the handler gave up on for a fault of their
        own) back to the handler, by id and/or filter, at most `limit`, the oldest
        failures first: each is queued on its DLQ again with a fresh retry budget, one
        audit record each, and no notification or alert already raised for it is
        raised again. `count` is how many match; `dry_run` lists them and changes
        nothing. Ids with no parked letter come back in `refused` with why."""
        done = rehandle(
            ctx.app.store,
            ids=body.ids,
            failure_filter=body.filter.to_filter(),
            all=body.all,
            actor=caller.actor,
            reason=body.reason,
            policy=ctx.app.policy,
            dry_run=body.dry_run,
            limit=body.limit,
        )
        view = ctx.view(caller)
        letters = [replace(letter, error=view.text(letter.error)) for letter in done.letters]
        return replace(done, letters=letters)

    @api.get("/review", response_model=ReviewPage)
    def review_log(
        caller: Annotated[Caller, Depends(ctx.read)],
        state: Literal["open", "reviewed", "all"] = "open",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ReviewPage:
        """UNKNOWN failures logged for a person to look at, newest first."""
        page = review.review_log(
            ctx.app.store, reviewed=REVIEWED[state], limit=limit, cursor=cursor
        )
        entries = [ctx.view(caller).review(entry) for entry in page.items]
        return ReviewPage(review=entries, count=len(entries), next_cursor=page.next_cursor)

    @api.post("/review/{dead_letter_id}", response_model=ActionResult, responses=ACTED)
    def mark_reviewed(
        caller: Annotated[Caller, Depends(ctx.operate)],
        dead_letter_id: JobId,
        body: Annotated[ReviewRequest | None, Body()] = None,
    ) -> ActionResult | JSONResponse:
        """Mark a review-log entry reviewed, with an optional note."""
        note = (body or ReviewRequest()).note
        return answer(
            review.mark_reviewed(ctx.app.store, dead_letter_id, by=caller.actor, note=note)
        )

    return api
