"""Who is at the browser, and may they: the session, the token behind it, its scope,
and the CSRF token of every state-changing request.

Each page depends on `WebContext.viewer(scope)`, each form's target on
`WebContext.actor(scope)`. Both decide before the page reads anything: no session or a
revoked token sends the browser to the login page (401 for a script); a scope that is
too narrow is 403; a form without this session's CSRF token, or posted from another
origin, is 403 too.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from deadletter.api.auth import Caller, address_of
from deadletter.api.context import ApiContext
from deadletter.errors import Unauthorized
from deadletter.ops.tokens import Scope, verify
from deadletter.web.sessions import COOKIE, Session, Sessions


@dataclass(frozen=True, slots=True)
class Operator:
    """The caller of a page, with the session it came with."""

    caller: Caller
    name: str
    session: Session

    def can(self, scope: Scope | str) -> bool:
        return self.caller.allows(Scope(scope))


class LoginRequired(Unauthorized):
    """No live session: the browser is sent to the login page."""


class Refused(Unauthorized):
    """403: the scope is too narrow, or a form is not this session's."""


@dataclass
class WebContext:
    """The API's context (app, guard, redaction, bulk runs) and the browser sessions."""

    api: ApiContext
    sessions: Sessions

    def viewer(self, needed: Scope) -> Callable[[Request], Operator]:
        """A page's dependency: the operator, if their scope reaches `needed`."""

        def dependency(request: Request) -> Operator:
            return self.operator(request, needed)

        return dependency

    def actor(self, needed: Scope) -> Callable[[Request], Awaitable[Operator]]:
        """A form target's dependency: the operator, if their scope reaches `needed` and
        the form carries their session's CSRF token from this origin."""

        async def dependency(request: Request) -> Operator:
            operator = self.operator(request, needed)
            check_origin(request)
            form = await request.form()
            sent = form.get("csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(
                sent.encode(), operator.session.csrf.encode()
            ):
                raise Refused("this form is not from this session: reload the page and retry")
            return operator

        return dependency

    def operator(self, request: Request, needed: Scope) -> Operator:
        now = time.time()
        session = self.sessions.get(request.cookies.get(COOKIE), now=now)
        if session is None:
            raise LoginRequired()
        self.api.guard.limit(f"session:{session.id}")
        operator = self._operator(session, address_of(request), now)
        if not operator.caller.allows(needed):
            raise Refused(f"your token's scope is {operator.caller.scope}; this needs {needed}")
        return operator

    def _operator(self, session: Session, address: str, now: float) -> Operator:
        if session.secret is None:
            caller = Caller(f"web:anonymous at {address} (auth off)", Scope.ADMIN)
            return Operator(caller, "anonymous (auth off)", session)
        token = verify(self.api.app.store, session.secret, now=now)
        if token is None:
            # Revoked or expired since login: this session ends with it.
            self.sessions.close(session.id)
            raise LoginRequired()
        scope = max(token.scopes, key=lambda s: s.rank)
        return Operator(Caller(f"web:{token.name} (token {token.id})", scope), token.name, session)


def check_origin(request: Request) -> None:
    """A form posted from a page of another origin is refused, whatever it carries.
    Browsers send Origin with every POST; a client that sends none is not a browser
    on another site."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Refused("a form from another site is refused")
