"""The overview: the seed's statistics against their thresholds, failures over time by
class, the top groups, queue depths, the DLQ backlog and the handler's delay. The page
refreshes its live part itself (htmx, every 5 s)."""

import time
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from deadletter.ops import dashboard
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, WebContext
from deadletter.web.render import Pages


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()

    @api.get("/", response_class=HTMLResponse)
    def overview(
        operator: Annotated[Operator, Depends(web.viewer(Scope.READ))],
        span: Literal["1h", "24h", "7d"] = "24h",
    ) -> HTMLResponse:
        app = web.api.app
        found = dashboard.overview(app.store, app.settings.thresholds, span=span, now=time.time())
        view = web.api.view(operator.caller)
        return HTMLResponse(
            pages.render(
                "overview.html",
                operator,
                page="overview",
                data=found,
                top_groups=[view.group(group) for group in found.top_groups],
                series=asdict(found.series),
                span=span,
                spans=list(dashboard.SPANS),
            )
        )

    return api
