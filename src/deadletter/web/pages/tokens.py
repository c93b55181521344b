"""API tokens (admin): the list, a new token shown once, and revoking one."""

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from deadletter.ops import tokens
from deadletter.ops.tokens import Scope
from deadletter.web.access import Operator, Refused, WebContext
from deadletter.web.render import Pages


def router(web: WebContext, pages: Pages) -> APIRouter:
    api = APIRouter()
    store = web.api.app.store

    def page(operator: Operator) -> HTMLResponse:
        created = web.sessions.take_once(operator.session.id)
        return HTMLResponse(
            pages.render(
                "tokens.html",
                operator,
                page="tokens",
                tokens=tokens.list_tokens(store),
                created=created,
                scopes=[s.value for s in Scope],
            )
        )

    @api.get("/tokens", response_class=HTMLResponse)
    def token_list(
        operator: Annotated[Operator, Depends(web.viewer(Scope.ADMIN))],
    ) -> HTMLResponse:
        return page(operator)

    @api.post("/tokens", response_model=None)
    def create(
        operator: Annotated[Operator, Depends(web.actor(Scope.ADMIN))],
        name: Annotated[str, Form(min_length=1, max_length=200)],
        scope: Annotated[Scope, Form()],
    ) -> Response:
        """The new token's secret is shown by the next page of this session only, so
        that reloading it neither shows the secret again nor creates another token."""
        _refuse_without_auth(web)
        _, secret = tokens.create(
            store, name.strip(), [scope], now=time.time(), actor=operator.caller.actor
        )
        web.sessions.put_once(operator.session.id, secret)
        return RedirectResponse("/tokens", status_code=303)

    @api.post("/tokens/{token_id}/revoke", response_model=None)
    def revoke(
        token_id: str, operator: Annotated[Operator, Depends(web.actor(Scope.ADMIN))]
    ) -> Response:
        _refuse_without_auth(web)
        revoked = tokens.revoke(store, token_id, now=time.time(), actor=operator.caller.actor)
        if revoked is None:
            raise HTTPException(404, f"no token {token_id}")
        return RedirectResponse("/tokens", status_code=303)

    return api


def _refuse_without_auth(web: WebContext) -> None:
    # As over the API: a token made while auth is off would outlive the session.
    if not web.api.guard.enabled:
        raise Refused("tokens cannot be managed while auth is off (serve --no-auth)")
