"""What needs `admin`: export (payloads included if asked) and API tokens.

Export is admin-only, with or without payloads: it is the bulk extraction of failures
as stored, unredacted (a read token pages through the redacted list instead).

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from deadletter.api.auth import Caller
from deadletter.api.context import GUARDED, NOT_FOUND, UNREADABLE, ApiContext
from deadletter.api.models import (
    CreatedToken,
    FailureQuery,
    Text,
    TokenList,
    TokenRequest,
)
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
    api = APIRouter(prefix="/api", responses=GUARDED)
    admin = Depends(ctx.admin)

    @api.get("/export", response_class=StreamingResponse, responses=EXPORTED, tags=["export"])
    def export(
        caller: Annotated[Caller, admin],
        where: Annotated[FailureQuery, Query()],
        format: ExportFormat = ExportFormat.JSONL,
        include_payload: bool = False,
        reason: Annotated[Text, Query(description="why, for the audit log")] = "",
    ) -> StreamingResponse:
        """Every failure matching the filter, newest first, streamed in chunks of 1,000
        rows: a million failures never sit in memory. Recorded in the audit log."""
        chunks = export_failures(
            ctx.app.store,
            where.to_filter(),
            fmt=format,
            actor=caller.actor,
            reason=reason,
            include_payload=include_payload,
        )
        name = f"failures-{int(time.time())}.{format.value}"
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @api.get("/tokens", response_model=TokenList, tags=["tokens"])
    def list_tokens(caller: Annotated[Caller, admin]) -> TokenList:
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
    def create_token(caller: Annotated[Caller, admin], body: TokenRequest) -> CreatedToken:
        """A new token; its secret is in this answer and nowhere else."""
        token, secret = tokens.create(ctx.app.store, body.name, [body.scope], now=time.time())
        return CreatedToken(token=token, secret=secret)

    @api.delete("/tokens/{token_id}", response_model=Token, responses=NOT_FOUND, tags=["tokens"])
    def revoke_token(
        caller: Annotated[Caller, admin],
        token_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[\w-]+$")],
    ) -> Token:
        """Revoke a token by id or prefix; it stops working at once."""
        revoked = tokens.revoke(ctx.app.store, token_id, now=time.time())
        if revoked is None:
            raise HTTPException(404, f"no token {token_id}")
        return revoked

    return api
