"""Who is asking, and may they: bearer tokens with scopes, and the rate limit.

Each protected route depends on `Guard.require(scope)`, which decides in this order,
before the route looks anything up:

1. the rate limit, per token (per client address without a valid token): 429;
2. the token: missing, malformed, unknown or revoked is 401;
3. the scope: a token without it is 403.

So a caller without the right to see a job cannot learn whether it exists: 404 comes
only from the route itself, after all three passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deadletter.api.ratelimit import RateLimiter
from deadletter.app import App
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


class Guard:
    """Tokens and rates for one server. With `enabled=False` (`serve --no-auth`) every
    caller is an admin named by its address; the rate limit still applies."""

    def __init__(self, app: App, limiter: RateLimiter, *, enabled: bool = True) -> None:
        # The app, not its store: the store is opened at the first request, so that
        # building the API (for its OpenAPI document, say) touches no database.
        self.app, self.limiter, self.enabled = app, limiter, enabled

    def require(self, needed: Scope) -> Callable[..., Caller]:
        """A route dependency: the caller, if it may act where `needed` is required."""

        def dependency(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
        ) -> Caller:
            caller = self.identify(request, credentials)
            if not caller.allows(needed):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"this token's scope is {caller.scope}; this needs {needed}",
                    headers={
                        "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'
                    },
                )
            return caller

        return dependency

    def identify(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None
    ) -> Caller:
        """The caller, after the rate limit; 401 without a live token."""
        address = address_of(request)
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

    def _token(self, credentials: HTTPAuthorizationCredentials | None) -> Token | None:
        if not self.enabled or credentials is None:
            return None
        return verify(self.app.store, credentials.credentials, now=time.time())


def address_of(request: Request) -> str:
    """The client's address (a proxy's, unless uvicorn trusts its forwarded headers)."""
    return request.client.host if request.client else "unknown"


def _challenge(credentials: HTTPAuthorizationCredentials | None) -> str:
    # RFC 6750: a request without credentials gets the bare challenge; one whose token
    # was refused is told so.
    return REALM if credentials is None else f'{REALM}, error="invalid_token"'
