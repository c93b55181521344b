"""What every route of one server shares, and the error responses routes declare."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from deadletter.api.auth import Caller, Guard
from deadletter.api.bulkruns import BulkRuns
from deadletter.api.models import Invalid, Problem
from deadletter.api.redaction import Redaction
from deadletter.app import App
from deadletter.forensics.base import BlobStore
from deadletter.ops.recovery import ActionResult
from deadletter.ops.system import HealthWatch
from deadletter.ops.tokens import Scope
from deadletter.redact import Redactor

log = logging.getLogger("deadletter.api")


@dataclass
class ApiContext:
    """The app whose failures are served, the guard, the bulk runs of this server, and
    its view of the database's health."""

    app: App
    guard: Guard
    redactor: Redactor
    blobs: BlobStore
    bulk: BulkRuns = field(default_factory=BulkRuns)
    health: HealthWatch = field(default_factory=lambda: HealthWatch(log))

    def __post_init__(self) -> None:
        # Route dependencies, one per scope, built once.
        self.read = self.guard.require(Scope.READ)
        self.operate = self.guard.require(Scope.OPERATE)
        self.admin = self.guard.require(Scope.ADMIN)
        # Tokens are managed only with auth on: under --no-auth anyone could make one
        # that outlives the session.
        self.tokens = self.guard.require(Scope.ADMIN, needs_auth=True)
        self._whole, self._redacted = Redaction(None), Redaction(self.redactor)

    def view(self, caller: Caller) -> Redaction:
        """Admins read failures as stored; other callers read them redacted."""
        return self._whole if caller.allows(Scope.ADMIN) else self._redacted


def problem(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        response["headers"] = {
            name: {"description": meaning, "schema": {"type": "string"}, "required": True}
            for name, meaning in headers.items()
        }
    return response


# Every route, open ones too, answers this: `Edges` refuses a foreign `Host` before routing.
MISDIRECTED: dict[int | str, dict[str, Any]] = {
    421: problem("The `Host` is not a loopback name or one of `[serve] allowed_hosts`.")
}
# Every protected route answers these before it looks anything up.
GUARDED: dict[int | str, dict[str, Any]] = {
    401: problem(
        "No valid token: missing, malformed, unknown or revoked.",
        **{"WWW-Authenticate": 'the challenge, `Bearer realm="deadletter"` (RFC 6750)'},
    ),
    403: problem(
        "The token's scope does not allow this.",
        **{"WWW-Authenticate": 'names the scope needed: `error="insufficient_scope"`'},
    ),
    429: problem(
        "Too many requests from this token (or address).",
        **{"Retry-After": "whole seconds to wait"},
    ),
    422: {
        "model": Invalid,
        "description": "A parameter or field is invalid, unknown, or missing; `loc` names it.",
    },
    503: problem("The database is unavailable."),
}
# Actions (every method but GET) also answer these.
UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: problem(
        "The body could not be read: not UTF-8, not JSON, NaN or Infinity, an unpaired"
        " surrogate, or nested too deep."
    ),
    413: problem("The body is larger than the server reads."),
    415: problem("The request did not say `Content-Type: application/json`."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("There is no such item.")}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ActionResult,
        "description": "The action does not apply now (already requeued, abandoned or"
        " reviewed, or not failed); `outcome` says which.",
    }
}
