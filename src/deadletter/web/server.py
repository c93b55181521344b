"""One server for both faces: the HTTP API under /api, the dashboard at /."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.types import Scope

from deadletter.api import create_api
from deadletter.app import App
from deadletter.web.app import create_web


class Beside(Mount):
    """The dashboard at /, for every path but the API's. A mount at / matches any path
    fully, so it would win over an API route that matches the path but not the method:
    a PUT on /api/failures would reach the dashboard and be a 404, not the API's 405
    naming the methods the path takes."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def create_server(app: App, *, auth: bool = True) -> FastAPI:
    """The API with the dashboard mounted beside it, sharing its guard, redaction and
    bulk runs: a run started in the browser is controlled over the API, and back."""
    api = create_api(app, auth=auth)
    api.router.routes.append(Beside("/", app=create_web(api.state.context)))
    return api
