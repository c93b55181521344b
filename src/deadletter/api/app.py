"""The HTTP API of one app: FastAPI routes over the service layer (`deadletter.ops`).

`create_api` builds it; `deadletter serve` runs it on uvicorn. Routes are thin: they
check the caller (`auth`), call one operation, and shape its answer (`models`,
`redaction`). Errors keep one shape, `{"detail": …}`; an invalid value names its field
as FastAPI's own validation errors do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.routing import Route

from deadletter.api.auth import Guard
from deadletter.api.context import MISDIRECTED, ApiContext
from deadletter.api.edges import Edges
from deadletter.api.ratelimit import RateLimiter
from deadletter.api.routes import admin, bulk, failures, fleet, recovery, system
from deadletter.api.routing import method_not_allowed
from deadletter.app import App
from deadletter.errors import InvalidRequest, StoreUnavailable
from deadletter.forensics import open_blob_store

DESCRIPTION = """Inspect, group, requeue, abandon and export the failed jobs of a
deadletter app. Send an API token as `Authorization: Bearer dl_…`; scopes are `read`,
`operate` (includes read) and `admin` (includes both). See docs/api.md."""


def create_api(app: App, *, auth: bool = True) -> FastAPI:
    """The API over `app`'s store and blob store. `auth=False` lets every caller act
    as an admin: for `serve --no-auth` only."""
    settings = app.settings
    serve = settings.serve
    ctx = ApiContext(
        app=app,
        guard=Guard(app, RateLimiter(serve.rate_limit, serve.rate_burst), enabled=auth),
        redactor=app.redactors.pii,
        blobs=open_blob_store(settings.blob_url, endpoint_url=settings.s3_endpoint_url or None),
    )

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        # Opened here, once, before requests come: the app opens its store on first
        # use, and concurrent first requests would each open one.
        _ = app.store
        yield
        # Each bulk run records its stop in the audit log before the server goes.
        ctx.bulk.stop()
        ctx.health.close()

    api = FastAPI(
        title="deadletter",
        version=version("deadletter"),
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_unclear_query)],
        responses=MISDIRECTED,
        max_body_size=body_limit(settings.payload_limit_bytes),
    )
    modules = (failures, recovery, bulk, fleet, admin, system)
    routers = [module.router(ctx) for module in modules]
    for router in routers:
        api.include_router(router)
    # The dashboard (deadletter.web) mounted beside the API shares this context, and
    # leaves it the paths of these routes: FastAPI's own (/openapi.json, /docs) and
    # ours, listed one by one (FastAPI keeps an included router as one lazy entry).
    api.state.context = ctx
    every = [*api.router.routes, *(r for x in routers for r in x.routes)]
    api.state.routes = [route for route in every if isinstance(route, Route)]
    api.add_exception_handler(InvalidRequest, _invalid)
    api.add_exception_handler(StoreUnavailable, _unavailable)
    api.add_exception_handler(405, method_not_allowed(api.state.routes))
    api.add_middleware(Edges, allowed_hosts=serve.allowed_hosts)
    return api


def body_limit(payload_limit: int) -> int:
    """The largest request body read: a corrected payload at its limit, each character
    escaped (`\\u00e9` is 6 bytes for 2), with room for the rest of the request."""
    return 3 * payload_limit + 64 * 1024


def refuse_unclear_query(request: Request) -> None:
    """422 for a query parameter the route does not take, or one given twice that takes
    one value: a misspelt or repeated filter of a list or an export would otherwise
    match other failures than were meant, silently."""
    route = request.scope["route"]
    declared = request.app.openapi()["paths"][route.path_format][request.method.lower()]
    takes_list = {
        p["name"]: p["schema"].get("type") == "array"
        for p in declared.get("parameters", ())
        if p["in"] == "query"
    }
    problems = []
    for name in sorted(set(request.query_params)):
        problem = _query_problem(name, request, takes_list)
        if problem:
            problems.append({"loc": ("query", name), "msg": problem, "type": "invalid_query"})
    if problems:
        raise RequestValidationError(problems)


def _query_problem(name: str, request: Request, takes_list: dict[str, bool]) -> str | None:
    if name not in takes_list:
        return "is not a parameter of this route"
    if not takes_list[name] and len(request.query_params.getlist(name)) > 1:
        return "takes one value, and was given several"
    return None


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """An operator's invalid value: 422, in the shape of FastAPI's validation errors."""
    field = exc.field if isinstance(exc, InvalidRequest) else "request"
    problem = str(exc).removeprefix(f"{field}: ")
    error = {"loc": [field], "msg": problem, "type": "invalid_request"}
    return JSONResponse({"detail": [error]}, status_code=422)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The cause names hosts and databases: for the log (once an outage), not the caller.
    ctx: ApiContext = request.app.state.context
    ctx.health.failed(ctx.app.store, exc)
    detail = "the database is unavailable; the server's log says why"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})
