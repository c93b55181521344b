"""One server for both faces: the HTTP API under /api, the dashboard at /."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Scope

from deadletter.api import create_api
from deadletter.app import App
from deadletter.web.app import create_web


class Beside(Mount):
    """The dashboard at /, for every path but the API's: those under /api, and those of
    its routes outside it (/metrics, /healthz, /openapi.json, /docs). A mount at /
    matches any path fully, so it would win over an API route that matches the path but
    not the method: a PUT on /api/failures or a POST on /metrics would reach the
    dashboard and be a 404, not the API's 405 naming the methods the path takes."""

    def __init__(self, path: str, app: ASGIApp, *, beside: Sequence[BaseRoute]) -> None:
        super().__init__(path, app=app)
        self.beside = beside

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if path == "/api" or path.startswith("/api/") or self._taken(scope):
            return Match.NONE, {}
        return super().matches(scope)

    def _taken(self, scope: Scope) -> bool:
        """True when a route of the API takes this path, with any method."""
        return any(route.matches(scope)[0] is not Match.NONE for route in self.beside)


def create_server(app: App, *, auth: bool = True) -> FastAPI:
    """The API with the dashboard mounted beside it, sharing its guard, redaction and
    bulk runs: a run started in the browser is controlled over the API, and back."""
    api = create_api(app, auth=auth)
    web = create_web(api.state.context)
    api.router.routes.append(Beside("/", app=web, beside=api.state.routes))
    return api
