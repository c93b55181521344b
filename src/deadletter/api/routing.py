"""How a request reaches a route: the caller first, then the request, read strictly.

`GuardedRoute` runs the route's `Requirement` (rate limit, token, scope) before FastAPI
reads a parameter or the body: an unauthenticated request learns nothing from a
validation error, and an invalid one still counts against its caller's rate. An action
(any method but GET and HEAD) must then say its body is JSON, even an empty one: a
browser sends a cross-site form or a body-less `fetch` without asking (no CORS
preflight) only with other content types.

`StrictRequest` reads the body as JSON proper: UTF-8, no `NaN` or `Infinity`, no text
that is not Unicode (a lone surrogate), and no deeper than `payloads.MAX_DEPTH`. Each is a 400
with a JSON error, never a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from email.message import Message
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Match, Route

from deadletter.api.auth import Requirement
from deadletter.payloads import json_problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class GuardedRoute(APIRoute):
    """A route whose caller is admitted before anything of its request is read."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        requirement = requirement_of(self.dependant)
        action = not (self.methods or set()) <= SAFE_METHODS

        async def guarded(request: Request) -> Response:
            if requirement is not None:
                # In a thread: checking a token reads the database.
                request.state.caller = await run_in_threadpool(requirement.admit, request)
            if action:
                refuse_unless_json(request)
            return await handle(StrictRequest(request.scope, request.receive))

        return guarded


def requirement_of(dependant: Dependant) -> Requirement | None:
    """The route's `Requirement`, among the dependencies of its endpoint."""
    found = [dep.call for dep in dependant.dependencies if isinstance(dep.call, Requirement)]
    return found[0] if found else None


def refuse_unless_json(request: Request) -> None:
    """415 unless `Content-Type` is `application/json` (a charset may follow)."""
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() != "application/json" or "content-type" not in request.headers:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send 'Content-Type: application/json' with every action, even without a body",
        )


class StrictRequest(Request):
    """A request whose JSON body is refused (400) unless it is strict JSON."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_strict(await self.body())
        return self._json


def parse_strict(body: bytes) -> Any:
    """`body` as JSON, or a 400 that says what is wrong with it."""
    try:
        value = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite
        )
    except UnicodeDecodeError as exc:
        raise _unreadable("the body is not UTF-8") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _unreadable(f"the body is not JSON: {exc}") from exc
    if problem := json_problem(value):
        raise _unreadable(f"the body {problem}")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def _unreadable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail)


def method_not_allowed(routes: Sequence[BaseRoute]) -> ExceptionHandler:
    """A 405 handler whose `Allow` names every method of `routes` the path takes: the
    router's own names the first route that matched the path only."""

    async def handler(request: Request, exc: Exception) -> Response:
        asked = {**request.scope, "method": ""}  # a method no route takes
        allowed = sorted(
            method
            for route in routes
            if isinstance(route, Route) and route.matches(asked)[0] is Match.PARTIAL
            for method in route.methods or ()
        )
        detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return JSONResponse(
            {"detail": detail}, status_code=405, headers={"Allow": ", ".join(allowed)}
        )

    return handler


class HexConvertor(Convertor[str]):
    """`{name:hex}` in a path: up to 32 lower-case hex digits, as a bulk run's id."""

    regex = "[0-9a-f]{1,32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("hex", HexConvertor())
