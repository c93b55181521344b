"""Reading failures: `failures` (the seed's dlq:failures), `show`, `groups`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

import typer

from deadletter.app import App
from deadletter.cli.context import console, open_app, print_json
from deadletter.cli.details import details_json, print_details
from deadletter.cli.params import Json, filter_options
from deadletter.cli.views import failures_table, groups_table, show_page
from deadletter.errors import DeadletterError
from deadletter.model import ErrorClass
from deadletter.ops import failures as ops
from deadletter.ops.failures import FailureDetails, FailureItem
from deadletter.ops.filters import MAX_LIMIT, FailureFilter

Limit = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="How many at most.")]
Cursor = Annotated[
    str | None,
    typer.Option(help="Continue a listing where the last page ended (same filters)."),
]


@filter_options
def failures(
    ctx: typer.Context,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: Json = False,
    *,
    failure_filter: FailureFilter,
) -> None:
    """Recent failures, newest first (the seed's dlq:failures), with filters."""
    with open_app(ctx) as app:
        page = ops.list_failures(app.store, failure_filter, limit=limit, cursor=cursor)
    show_page(
        page,
        name="failures",
        noun="failures",
        as_json=as_json,
        to_json=failure_json,
        table=failures_table,
    )


def failure_json(item: FailureItem) -> dict[str, Any]:
    """The seed's fields first (epoch-second times; `completed_at` is when the job
    failed), then everything else known about the failure."""
    seed = {
        "job_id": item.job_id,
        "site_name": item.labels.get("site_name"),
        "error_message": item.error_message,
        "retry_count": item.retry_count,
        "created_at": int(item.created_at),
        "completed_at": int(item.failed_at),
    }
    return {**seed, **{k: v for k, v in item.to_json().items() if k not in seed}}


def show(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The job's id.")],
    as_json: Json = False,
) -> None:
    """One failed job: attempts, traceback, class and rule, group, forensic record."""
    with open_app(ctx) as app:
        details = job_details(app, job)
    if as_json:
        print_json(details_json(details))
    else:
        print_details(console, details)


def job_details(app: App, job_id: str) -> FailureDetails:
    details = ops.failure_details(app.store, app.dlq.blobs, job_id.strip())
    if details is not None:
        return details
    job = app.store.get_job(job_id.strip())
    if job is None:
        raise DeadletterError(f"no job {job_id}")
    raise DeadletterError(f"job {job_id} has never failed (it is {job.status.value})")


def groups(
    ctx: typer.Context,
    queue: Annotated[
        str | None, typer.Option("--queue", "-q", help="First seen on this queue.")
    ] = None,
    error_class: Annotated[
        ErrorClass | None, typer.Option("--class", help="Only groups of this class.")
    ] = None,
    sort: Annotated[Literal["count", "last_seen"], typer.Option(help="Order.")] = "count",
    limit: Limit = 20,
    as_json: Json = False,
) -> None:
    """Failures grouped by cause (fingerprint); `failures --group` lists one group."""
    with open_app(ctx) as app:
        found = ops.groups(
            app.store,
            error_class=error_class.value if error_class else None,
            queue=queue,
            sort=sort,
            limit=limit,
        )
    if as_json:
        print_json({"groups": [asdict(group) for group in found], "count": len(found)})
        return
    console.print(groups_table(found))
