"""One server for both faces: the HTTP API under /api, the dashboard at /."""

from __future__ import annotations

from fastapi import FastAPI

from deadletter.api import create_api
from deadletter.app import App
from deadletter.web.app import create_web


def create_server(app: App, *, auth: bool = True) -> FastAPI:
    """The API with the dashboard mounted beside it, sharing its guard, redaction and
    bulk runs: a run started in the browser is controlled over the API, and back."""
    api = create_api(app, auth=auth)
    api.mount("/", create_web(api.state.context))
    return api
