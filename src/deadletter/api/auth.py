"""Who is asking, and may they: bearer tokens with scopes, and the rate limit.

Each protected route depends on `Guard.require(scope)`, a `Requirement` that decides
in this order, before the request's parameters or body are read, let alone looked up:

1. the rate limit, per token (per client address without a valid token): 429;
2. the token: missing, malformed, unknown or revoked is 401;
3. the scope: a token without it is 403.

So a caller without the right to see a job cannot learn whether it exists: 404 comes
only from the route itself, after all three passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deadletter.api.ratelimit import RateLimiter
from deadletter.app import App
from deadletter.errors import InternalError
from deadletter.ops.tokens import Scope, Token, verify

REALM = 'Bearer realm="deadletter"'

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`dl_…`) from `deadletter token create`, or the one"
    " `deadletter serve` printed when it started.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """A request's caller: `actor` is who the audit log names."""

    actor: str
    scope: Scope

    def allows(self, needed: Scope) -> bool:
        return self.scope.rank >= needed.rank


def caller_of(token: Token) -> Caller:
    highest = max(token.scopes, key=lambda scope: scope.rank)
    return Caller(f"api:{token.name} (token {token.id})", highest)


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs of its caller: a scope, and for token management a server
    with auth on. As a route dependency it gives the caller that `GuardedRoute` admitted
    before the request was read (see `deadletter.api.routing`)."""

    guard: Guard
    scope: Scope
    needs_auth: bool = False

    def __call__(
        self,
        request: Request,
        # Declares the bearer scheme in the OpenAPI document; the token was read already.
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Caller:
        caller = getattr(request.state, "caller", None)
        if not isinstance(caller, Caller):
            raise InternalError(f"{request.url.path} is not a GuardedRoute: nobody checked")
        return caller

    def admit(self, request: Request) -> Caller:
        """The caller, if it may act here: 429, 401, 403 otherwise, in that order."""
        caller = self.guard.identify(request)
        if self.needs_auth and not self.guard.enabled:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "tokens cannot be managed while auth is off (serve --no-auth): anyone"
                " could make one; use `deadletter token` on the server's machine",
            )
        if not caller.allows(self.scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this token's scope is {caller.scope}; this needs {self.scope}",
                headers={
                    "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{self.scope}"'
                },
            )
        return caller


class Guard:
    """Tokens and rates for one server. With `enabled=False` (`serve --no-auth`) every
    caller is an admin named by its address; the rate limit still applies."""

    def __init__(self, app: App, limiter: RateLimiter, *, enabled: bool = True) -> None:
        # The app, not its store: the store is opened at the first request, so that
        # building the API (for its OpenAPI document, say) touches no database.
        self.app, self.limiter, self.enabled = app, limiter, enabled

    def require(self, needed: Scope, *, needs_auth: bool = False) -> Requirement:
        """A route dependency: the caller, if it may act where `needed` is required."""
        return Requirement(self, needed, needs_auth)

    def identify(self, request: Request) -> Caller:
        """The caller, after the rate limit; 401 without a live token."""
        address = address_of(request)
        credentials = _credentials(request)
        token = self._token(credentials)
        self.limit(f"token:{token.id}" if token else f"address:{address}")
        if not self.enabled:
            return Caller(f"api:anonymous at {address} (auth off)", Scope.ADMIN)
        if token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid API token is required: send 'Authorization: Bearer dl_…'",
                headers={"WWW-Authenticate": _challenge(credentials)},
            )
        return caller_of(token)

    def limit(self, key: str) -> None:
        """429 with Retry-After when `key` has asked too often."""
        wait = self.limiter.retry_after(key)
        if wait is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many requests; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def _token(self, credentials: str | None) -> Token | None:
        if not self.enabled or credentials is None:
            return None
        return verify(self.app.store, credentials, now=time.time())


def address_of(request: Request) -> str:
    """The client's address (a proxy's, unless uvicorn trusts its forwarded headers)."""
    return request.client.host if request.client else "unknown"


def _credentials(request: Request) -> str | None:
    """The bearer token the request sends, if it sends one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def _challenge(credentials: str | None) -> str:
    # RFC 6750: a request without credentials gets the bare challenge; one whose token
    # was refused is told so.
    return REALM if credentials is None else f'{REALM}, error="invalid_token"'
