"""The recovery queue, the review log (marking entries reviewed) and the audit log."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deadletter.ops import recovery, review
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.render import Pages

PAGE_SIZE = 50
REVIEWED = {"open": False, "reviewed": True, "all": None}


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store
    read = Depends(web.viewer(Scope.READ))

    @api.get("/recovery", response_class=HTMLResponse)
    def recovery_queue(
        operator: Annotated[Operator, read],
        status: Literal["pending", "requeued", "recovered", "abandoned"] | None = None,
        cursor: str | None = None,
    ) -> HTMLResponse:
        found = recovery.recovery_queue(store, status=status, limit=PAGE_SIZE, cursor=cursor)
        view = web.api.view(operator.caller)
        return HTMLResponse(
            pages.render(
                "recovery.html",
                operator,
                page="recovery",
                entries=[view.recovery(entry) for entry in found.items],
                next_cursor=found.next_cursor,
                status=status or "",
            )
        )

    @api.get("/review", response_class=HTMLResponse)
    def review_log(
        operator: Annotated[Operator, read],
        state: Literal["open", "reviewed", "all"] = "open",
        cursor: str | None = None,
    ) -> HTMLResponse:
        found = review.review_log(store, reviewed=REVIEWED[state], limit=PAGE_SIZE, cursor=cursor)
        view = web.api.view(operator.caller)
        return HTMLResponse(
            pages.render(
                "review.html",
                operator,
                page="review",
                entries=[view.review(entry) for entry in found.items],
                next_cursor=found.next_cursor,
                state=state,
            )
        )

    @api.post("/review/{dead_letter_id}", response_model=None)
    def mark_reviewed(
        dead_letter_id: str,
        operator: Annotated[Operator, Depends(web.actor(Scope.OPERATE))],
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        result = review.mark_reviewed(store, dead_letter_id, by=operator.caller.actor, note=note)
        if not result.done:
            raise HTTPException(409 if result.outcome.value != "not_found" else 404, result.message)
        return RedirectResponse("/review", status_code=303)

    @api.get("/audit", response_class=HTMLResponse)
    def audit(
        operator: Annotated[Operator, read],
        action: AuditAction | None = None,
        target: str | None = None,
        cursor: str | None = None,
    ) -> HTMLResponse:
        found = audit_entries(
            store, target=target or None, action=action, limit=PAGE_SIZE, cursor=cursor
        )
        view = web.api.view(operator.caller)
        return HTMLResponse(
            pages.render(
                "audit.html",
                operator,
                page="audit",
                entries=[view.audit(entry) for entry in found.items],
                next_cursor=found.next_cursor,
                action=action.value if action else "",
                target=target or "",
                actions=[a.value for a in AuditAction],
            )
        )

    return api
