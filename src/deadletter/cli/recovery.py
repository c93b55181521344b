"""Acting on failures: `requeue`, `abandon` (one job, or many by filter), the
`recovery` queue and the `review` log. Every action is audited as `cli:<os user>`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

import typer

from deadletter.cli.bulk import BulkOptions, bulk, bulk_options
from deadletter.cli.context import EXIT_ERROR, actor, console, open_app, print_json
from deadletter.cli.failures import Cursor, Limit
from deadletter.cli.params import Json, filter_options, parse_payload
from deadletter.cli.views import action_text, recovery_table, review_table, show_page
from deadletter.errors import InvalidRequest
from deadletter.ops import recovery as ops
from deadletter.ops.bulk import BulkAction
from deadletter.ops.filters import FailureFilter
from deadletter.ops.recovery import ActionResult
from deadletter.ops.review import mark_reviewed, review_log

# store.reports.RECOVERY_STATUSES, as a type: --help lists them, a typo is a usage error.
RecoveryStatus = Literal["pending", "requeued", "recovered", "abandoned"]
JobId = Annotated[
    str | None,
    typer.Argument(help="The job's id; leave it out to act on every job the filters match."),
]


@bulk_options
@filter_options
def requeue(
    ctx: typer.Context,
    job: JobId = None,
    payload: Annotated[
        str | None,
        typer.Option(help='A corrected payload, {"args": [...], "kwargs": {...}}, or @file.'),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log (needed for many).")] = "",
    as_json: Json = False,
    *,
    failure_filter: FailureFilter,
    bulk_options: BulkOptions,
) -> None:
    """Put a failed job back on its queue, or every failed job the filters match.

    The job gets a fresh retry budget and keeps its history. With filters: the count \
and a sample first, then a confirmation (--yes skips it), then a paced run that Ctrl-C \
cancels."""
    with open_app(ctx) as app:
        if _one(job, failure_filter, bulk_options.everything):
            edited = None if payload is None else parse_payload(payload)
            result = ops.requeue(
                app.store,
                job or "",
                actor=actor(),
                reason=reason,
                policy=app.policy,
                payload_limit=app.settings.payload_limit_bytes,
                payload=edited,
            )
            _report(result, as_json)
            return
        if payload is not None:
            raise InvalidRequest("payload", "corrects one job at a time: give its id")
        bulk(app, BulkAction.REQUEUE, failure_filter, bulk_options, reason=reason, as_json=as_json)


@bulk_options
@filter_options
def abandon(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why the job is given up on (required).")],
    job: JobId = None,
    as_json: Json = False,
    *,
    failure_filter: FailureFilter,
    bulk_options: BulkOptions,
) -> None:
    """Give up on a failed job, or on every failed job the filters match.

    Its recovery row becomes abandoned; the job stays failed. With filters: the count \
and a sample first, then a confirmation (--yes skips it), then a paced run that Ctrl-C \
cancels."""
    with open_app(ctx) as app:
        if _one(job, failure_filter, bulk_options.everything):
            _report(ops.abandon(app.store, job or "", actor=actor(), reason=reason), as_json)
            return
        bulk(app, BulkAction.ABANDON, failure_filter, bulk_options, reason=reason, as_json=as_json)


def _one(job: str | None, failure_filter: FailureFilter, everything: bool) -> bool:
    """Whether the command acts on one job; refuses a job and filters at once, and
    neither (an empty filter must be asked for with --all)."""
    if job is not None and (everything or not failure_filter.is_empty):
        raise InvalidRequest("job", "give a job id or filters, not both")
    if job is None and failure_filter.is_empty and not everything:
        raise InvalidRequest(
            "job",
            "give a job id, or filters (--queue, --class, --group, --since, --until, --text)"
            " to act on many; --all to act on every failed job",
        )
    return job is not None


def _report(result: ActionResult, as_json: bool) -> None:
    if as_json:
        print_json(asdict(result))
    else:
        console.print(action_text(result))
    if not result.done:
        raise typer.Exit(EXIT_ERROR)


def recovery(
    ctx: typer.Context,
    status: Annotated[
        RecoveryStatus | None, typer.Option(help="Only entries in this status.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: Json = False,
) -> None:
    """The recovery queue (RECOVERABLE failures and requeued jobs), by status."""
    with open_app(ctx) as app:
        page = ops.recovery_queue(app.store, status=status, limit=limit, cursor=cursor)
    show_page(
        page, name="recovery", noun="entries", as_json=as_json, to_json=asdict, table=recovery_table
    )


review_app = typer.Typer(help="The review log: UNKNOWN failures waiting for a person.")


@review_app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Reviewed entries too.")] = False,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: Json = False,
) -> None:
    """List open review entries (`--all`: reviewed ones too); `review mark ID` closes one."""
    if ctx.invoked_subcommand is not None:
        return
    with open_app(ctx) as app:
        page = review_log(
            app.store, reviewed=None if everything else False, limit=limit, cursor=cursor
        )
    show_page(
        page, name="review", noun="entries", as_json=as_json, to_json=asdict, table=review_table
    )


@review_app.command("mark")
def mark(
    ctx: typer.Context,
    entry: Annotated[str, typer.Argument(help="The entry's id (its dead letter id).")],
    note: Annotated[str, typer.Option(help="What was found, for the audit log.")] = "",
    as_json: Json = False,
) -> None:
    """Mark a review entry reviewed."""
    with open_app(ctx) as app:
        _report(mark_reviewed(app.store, entry, by=actor(), note=note), as_json)
