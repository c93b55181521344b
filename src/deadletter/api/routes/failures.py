"""Reading failures: the seed's two endpoints, then lists, details, groups, the audit log.

Every route here needs the `read` scope and answers admins with failures as stored,
everyone else with personal data redacted.

Not `from __future__ import annotations`: FastAPI reads each route's annotations at
runtime, and they name this module's closures.
"""

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from deadletter.api.auth import Caller
from deadletter.api.context import GUARDED, NOT_FOUND, ApiContext
from deadletter.api.models import (
    AuditPage,
    Cursor,
    FailurePage,
    FailureQuery,
    GroupList,
    JobId,
    Limit,
    Name,
    SeedFailures,
    StatsResponse,
)
from deadletter.api.routing import GuardedRoute
from deadletter.model import ErrorClass
from deadletter.ops import failures
from deadletter.ops.audit import AuditAction, audit_entries
from deadletter.ops.failures import FailureDetails
from deadletter.ops.reports import failures_json, stats_json


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(route_class=GuardedRoute, prefix="/api", responses=GUARDED)

    @api.get("/queue/dlq/stats", response_model=StatsResponse, tags=["seed"])
    def stats(caller: Annotated[Caller, Depends(ctx.read)]) -> object:
        """The seed's DLQ statistics, in its shape (plus `recovery.requeued`, and the
        queues an operator paused)."""
        store = ctx.app.store
        return stats_json(store.dlq_stats(now=time.time()), store.paused_queues())

    @api.get("/queue/dlq/failures", response_model=SeedFailures, tags=["seed"])
    def recent(caller: Annotated[Caller, Depends(ctx.read)], limit: Limit = 20) -> object:
        """The most recently failed jobs, in the seed's shape: timestamps in epoch
        seconds, `retry_count` the attempts after the first."""
        document = failures_json(ctx.app.store.recent_failures(limit=limit))
        return ctx.view(caller).seed_failures(document)

    @api.get("/failures", response_model=FailurePage, tags=["failures"])
    def list_failures(
        caller: Annotated[Caller, Depends(ctx.read)],
        where: Annotated[FailureQuery, Query()],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> FailurePage:
        """Failures matching the filter, newest first, a page at a time."""
        page = failures.list_failures(ctx.app.store, where.to_filter(), limit=limit, cursor=cursor)
        items = [ctx.view(caller).failure(item) for item in page.items]
        return FailurePage(failures=items, count=len(items), next_cursor=page.next_cursor)

    @api.get(
        "/failures/{job_id}",
        response_model=FailureDetails,
        responses=NOT_FOUND,
        tags=["failures"],
    )
    def details(caller: Annotated[Caller, Depends(ctx.read)], job_id: JobId) -> FailureDetails:
        """Everything known about a failed job: its latest failure and earlier ones,
        every attempt with its traceback, the classification and the rule that matched,
        its group, replaced payloads, and the forensic record."""
        found = failures.failure_details(ctx.app.store, ctx.blobs, job_id)
        if found is None:
            raise HTTPException(404, f"no failed job {job_id}")
        return ctx.view(caller).details(found)

    @api.get("/groups", response_model=GroupList, tags=["failures"])
    def groups(
        caller: Annotated[Caller, Depends(ctx.read)],
        error_class: ErrorClass | None = None,
        queue: Annotated[Name | None, Query()] = None,
        sort: Literal["count", "last_seen"] = "count",
        limit: Limit = 50,
    ) -> GroupList:
        """Failures grouped by cause (fingerprint), largest or most recent first."""
        found = failures.groups(
            ctx.app.store,
            error_class=error_class.value if error_class else None,
            queue=queue,
            sort=sort,
            limit=limit,
        )
        shown = [ctx.view(caller).group(group) for group in found]
        return GroupList(groups=shown, count=len(shown))

    @api.get("/audit", response_model=AuditPage, tags=["audit"])
    def audit(
        caller: Annotated[Caller, Depends(ctx.read)],
        target: Annotated[Name | None, Query(description="a job id, or a bulk filter")] = None,
        action: AuditAction | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AuditPage:
        """Who requeued, abandoned, edited, exported or reviewed what, when and why."""
        page = audit_entries(
            ctx.app.store, target=target, action=action, limit=limit, cursor=cursor
        )
        entries = [ctx.view(caller).audit(entry) for entry in page.items]
        return AuditPage(audit=entries, count=len(entries), next_cursor=page.next_cursor)

    return api
