"""`/healthz` for load balancers and `/metrics` for Prometheus.

`/healthz` is open: a probe seldom carries a token, and it says only whether this
server can reach its database, nothing about what is in it. `/metrics` needs `read`:
queue names, volumes and error classes describe the business behind the jobs, and
Prometheus sends a bearer token with `authorization: {credentials_file: …}`.

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from deadletter.api.auth import Caller, address_of
from deadletter.api.context import GUARDED, ApiContext
from deadletter.api.metrics import registry_for
from deadletter.api.models import Health
from deadletter.api.routing import GuardedRoute
from deadletter.ops.system import probe

# A probe that waits longer than this for the database calls it unreachable: a health
# check must answer within the prober's own timeout, however the database hangs.
HEALTH_TIMEOUT = 2.0
DOWN = Health(status="degraded", database="unreachable")


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, tags=["system"])
    # One prober: while the database hangs, probes queue here and time out, rather
    # than each holding a thread of the server.
    prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz")
    registry = registry_for(ctx.app)

    @api.get(
        "/healthz",
        response_model=Health,
        responses={
            503: {
                "model": Health,
                "description": "Degraded: the database cannot be reached (an outage).",
            },
            429: GUARDED[429],
        },
    )
    def healthz(request: Request) -> Health | JSONResponse:
        """Whether this server can reach its database: `ok`, or `degraded` (503) while
        it cannot. Open: no token needed."""
        # A bucket of its own: a load balancer's probe shares its address with every
        # client behind it, and their bad requests must not make it see 429.
        ctx.guard.limit(f"healthz:{address_of(request)}")
        store = ctx.app.store
        try:
            prober.submit(probe, store).result(timeout=HEALTH_TIMEOUT)
        # Whatever keeps the database from answering in time (an error, a timeout)
        # degrades this server; the cause goes to the log once an outage, not to the caller.
        except Exception as exc:
            ctx.health.failed(store, exc)
            return JSONResponse(DOWN.model_dump(), status_code=503)
        ctx.health.answered()
        return Health(status="ok", database="ok")

    @api.get(
        "/metrics",
        response_class=Response,
        responses={
            **GUARDED,
            200: {
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                "description": "Prometheus text exposition format",
            },
        },
    )
    def metrics(caller: Annotated[Caller, Depends(ctx.read)]) -> Response:
        """The database's figures for Prometheus (see docs/api.md for each metric)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
