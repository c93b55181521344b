"""Logging in with a token, and out.

The token is posted once, checked, and kept in this server's memory behind a random
session id; the browser gets only that id, in an HttpOnly, SameSite=Strict cookie
(Secure over HTTPS). Attempts are rate-limited per address, as API requests are.
"""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deadletter.api.auth import address_of
from deadletter.ops.tokens import Scope, verify
from deadletter.web.access import Operator, WebContext, check_origin
from deadletter.web.render import Pages
from deadletter.web.sessions import COOKIE


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()

    @api.get("/login", response_class=HTMLResponse)
    def login_page(next: str = "/") -> HTMLResponse:
        body = pages.render("login.html", None, next=_local(next), error=None, auth=_auth(web))
        return HTMLResponse(body)

    @api.post("/login", response_model=None)
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        check_origin(request)
        web.api.guard.limit(f"login:{address_of(request)}")
        now = time.time()
        secret = token.strip() if _auth(web) else None
        if secret is not None and verify(web.api.app.store, secret, now=now) is None:
            body = pages.render(
                "login.html", None, next=_local(next), error="That token is not valid.", auth=True
            )
            return HTMLResponse(body, status_code=401)
        session = web.sessions.open(secret, now=now)
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(web.sessions.ttl),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @api.post("/logout")
    def logout(operator: Annotated[Operator, Depends(web.actor(Scope.READ))]) -> Response:
        web.sessions.close(operator.session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return api


def _auth(web: WebContext) -> bool:
    return web.api.guard.enabled


def _local(target: str) -> str:
    """`target` if it is a path of this site; "/" for anything else (an open redirect
    to another site through the login page is refused)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
