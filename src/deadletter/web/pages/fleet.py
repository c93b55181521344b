"""Queues and workers: each queue's jobs by state, whether it is paused (with pause and
resume for `operate`, a reason required), and the live workers with what they run now.
The workers' part refreshes itself (htmx, every 5 s); the queues' part does not, so
that a reason being typed is not wiped out."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deadletter.model import JobState
from deadletter.ops import fleet
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.render import Pages

Reason = Annotated[str, Form(max_length=2000)]


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store
    gone_after = web.api.app.settings.worker.gone_after_seconds
    operate = Depends(web.actor(Scope.OPERATE))

    @api.get("/queues", response_class=HTMLResponse)
    def queues(
        operator: Annotated[Operator, Depends(web.viewer(Scope.READ))], done: str = ""
    ) -> HTMLResponse:
        return HTMLResponse(
            pages.render(
                "queues.html",
                operator,
                page="queues",
                queues=fleet.queues(store, gone_after=gone_after),
                workers=fleet.live_workers(store, gone_after=gone_after),
                states=[state.value for state in JobState],
                now=time.time(),
                done=done,
            )
        )

    @api.post("/queues/{queue}/pause", response_model=None)
    def pause(queue: str, operator: Annotated[Operator, operate], reason: Reason = "") -> Response:
        fleet.pause_queue(store, queue, actor=operator.caller.actor, reason=reason)
        return RedirectResponse("/queues?done=paused", status_code=303)

    @api.post("/queues/{queue}/resume", response_model=None)
    def resume(queue: str, operator: Annotated[Operator, operate], reason: Reason = "") -> Response:
        fleet.resume_queue(store, queue, actor=operator.caller.actor, reason=reason)
        return RedirectResponse("/queues?done=resumed", status_code=303)

    return api
