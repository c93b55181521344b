"""What needs `admin`: export (payloads included if asked) and API tokens.

Export is admin-only, with or without payloads: it is the bulk extraction of failures
as stored, unredacted (a read token pages through the redacted list instead).

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path
from fastapi.responses import StreamingResponse

from deadletter.api.auth import Caller
from deadletter.api.context import GUARDED, NOT_FOUND, UNREADABLE, ApiContext
from deadletter.api.models import (
    CreatedToken,
    ExportRequest,
    RevokeRequest,
    TokenList,
    TokenRequest,
)
from deadletter.api.routing import GuardedRoute
from deadletter.ops import tokens
from deadletter.ops.export import ExportFormat, export_failures
from deadletter.ops.tokens import Token

MEDIA_TYPES = {
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
}
ROWS = {"type": "array", "items": {"$ref": "#/components/schemas/FailureItem"}}
EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The failures, streamed: JSON lines, CSV with a header row, or one"
        " JSON array. With `include_payload`, each also has the job's `payload`.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": ROWS},
        },
    }
}


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, prefix="/api", responses=GUARDED)
    admin = Depends(ctx.admin)

    @api.post(
        "/export",
        response_class=StreamingResponse,
        responses={**EXPORTED, **UNREADABLE},
        tags=["export"],
    )
    def export(caller: Annotated[Caller, admin], body: ExportRequest) -> StreamingResponse:
        """Every failure matching the filter, newest first, streamed in chunks of 1,000
        rows: a million failures never sit in memory. Recorded in the audit log with its
        reason. A POST, so that the filter and the reason stay out of access logs."""
        chunks = export_failures(
            ctx.app.store,
            body.filter.to_filter(),
            fmt=body.format,
            actor=caller.actor,
            reason=body.reason,
            include_payload=body.include_payload,
        )
        name = f"failures-{int(time.time())}.{body.format.value}"
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[body.format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    manage = Depends(ctx.tokens)

    @api.get("/tokens", response_model=TokenList, tags=["tokens"])
    def list_tokens(caller: Annotated[Caller, manage]) -> TokenList:
        """Every token, revoked ones too, oldest first: never their secrets."""
        found = tokens.list_tokens(ctx.app.store)
        return TokenList(tokens=found, count=len(found))

    @api.post(
        "/tokens",
        response_model=CreatedToken,
        status_code=201,
        responses=UNREADABLE,
        tags=["tokens"],
    )
    def create_token(caller: Annotated[Caller, manage], body: TokenRequest) -> CreatedToken:
        """A new token; its secret is in this answer and nowhere else. Recorded in the
        audit log."""
        token, secret = tokens.create(
            ctx.app.store,
            body.name,
            [body.scope],
            now=time.time(),
            actor=caller.actor,
            reason=body.reason,
        )
        return CreatedToken(token=token, secret=secret)

    @api.delete(
        "/tokens/{token_id}",
        response_model=Token,
        responses={**UNREADABLE, **NOT_FOUND},
        tags=["tokens"],
    )
    def revoke_token(
        caller: Annotated[Caller, manage],
        token_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w-]+$")],
        body: Annotated[RevokeRequest | None, Body()] = None,
    ) -> Token:
        """Revoke a token by id or prefix; it stops working at once. Recorded in the
        audit log, with the body's reason if it has one."""
        reason = (body or RevokeRequest()).reason
        revoked = tokens.revoke(
            ctx.app.store, token_id, now=time.time(), actor=caller.actor, reason=reason
        )
        if revoked is None:
            raise HTTPException(404, f"no token {token_id}")
        return revoked

    return api
