"""Failure groups (one cause each), with a sparkline of the last day and a sample
traceback fetched when it is opened; their bulk actions go through the dry run."""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from deadletter.model import ErrorClass
from deadletter.ops import dashboard, failures
from deadletter.ops.filters import FailureFilter
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.render import Pages


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store

    @api.get("/groups", response_class=HTMLResponse)
    def group_list(
        operator: Annotated[Operator, Depends(web.viewer(Scope.READ))],
        error_class: ErrorClass | None = None,
        sort: Literal["count", "last_seen"] = "count",
    ) -> HTMLResponse:
        found = failures.groups(
            store, error_class=error_class.value if error_class else None, sort=sort, limit=50
        )
        view = web.api.view(operator.caller)
        lines = dashboard.sparklines(store, [g.fingerprint for g in found], now=time.time())
        return HTMLResponse(
            pages.render(
                "groups.html",
                operator,
                page="groups",
                groups=[view.group(group) for group in found],
                lines=lines,
                error_class=error_class.value if error_class else "",
                sort=sort,
                classes=[c.value for c in ErrorClass],
            )
        )

    @api.get("/groups/{fingerprint}/sample", response_class=HTMLResponse)
    def sample(
        fingerprint: str, operator: Annotated[Operator, Depends(web.viewer(Scope.READ))]
    ) -> HTMLResponse:
        """The traceback of the group's newest failure: a fragment for its row."""
        newest = failures.list_failures(store, FailureFilter(fingerprint=fingerprint), limit=1)
        attempts = store.attempts(newest.items[0].job_id) if newest.items else []
        view = web.api.view(operator.caller)
        traceback = view.text(attempts[-1].traceback) if attempts else None
        job_id = newest.items[0].job_id if newest.items else None
        return HTMLResponse(
            pages.render("sample.html", operator, traceback=traceback, job_id=job_id)
        )

    return api
