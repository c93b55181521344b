"""The dashboard as an ASGI app, mounted at / beside the API (see server.py).

Every response carries a strict Content-Security-Policy (scripts and styles from this
server only: no inline script, no eval), refuses to be framed, and forbids MIME
sniffing; pages are `no-store`, since they show failures. Errors are pages, not JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from deadletter.api.context import ApiContext
from deadletter.errors import InvalidRequest, StoreUnavailable
from deadletter.web.access import LoginRequired, Refused, WebContext
from deadletter.web.pages import bulk, failures, fleet, groups, login, logs, overview, tokens
from deadletter.web.render import Pages
from deadletter.web.sessions import Sessions

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_web(api: ApiContext) -> FastAPI:
    web = WebContext(api, Sessions())
    pages = Pages()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(packages=[("deadletter.web", "static")]), name="static")
    for module in (login, overview, failures, groups, fleet, bulk, logs, tokens):
        app.include_router(module.router(web, pages))
    _handle_errors(app, pages, api)

    @app.middleware("http")
    async def secure_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(HEADERS)
        # Static files carry their version in their names (or ?v=): a day in the
        # browser's cache is safe. Pages show failures: never stored.
        static = request.url.path.startswith("/static/")
        response.headers["Cache-Control"] = "max-age=86400" if static else "no-store"
        return response

    return app


def _handle_errors(app: FastAPI, pages: Pages, api: ApiContext) -> None:
    def page(status: int, title: str, detail: str) -> HTMLResponse:
        body = pages.render("error.html", None, status=status, title=title, detail=detail)
        return HTMLResponse(body, status_code=status)

    async def login_required(request: Request, exc: Exception) -> Response:
        if request.method == "GET" and "hx-request" not in request.headers:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={_quoted(target)}", status_code=303)
        return page(401, "Log in again", "Your session has ended: log in again.")

    async def refused(request: Request, exc: Exception) -> Response:
        return page(403, "Not allowed", str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return page(exc.status_code, "Error", str(exc.detail))

    async def invalid(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
            )
        else:
            detail = str(exc)
        return page(422, "Invalid request", detail)

    async def unavailable(request: Request, exc: Exception) -> Response:
        # The server's one log of the outage (api/context.py), not a line per page.
        api.health.failed(api.app.store, exc)
        return page(503, "Database unavailable", "The database is unavailable; retry soon.")

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(InvalidRequest, invalid)
    app.add_exception_handler(StoreUnavailable, unavailable)


def _quoted(target: str) -> str:
    return quote(target, safe="/")
