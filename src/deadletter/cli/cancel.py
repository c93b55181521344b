"""`deadletter cancel`: remove jobs that wait to run and stop those that run, by id or by
queue and task."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.text import Text

from deadletter.cli.context import EXIT_ERROR, actor, console, open_app, print_json
from deadletter.cli.params import Json
from deadletter.ops.cancel import Cancellation
from deadletter.ops.cancel import cancel as cancel_jobs


def cancel(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why the jobs are cancelled (required).")],
    jobs: Annotated[list[str] | None, typer.Argument(help="Ids of the jobs to cancel.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only jobs of this queue.")] = None,
    task: Annotated[str | None, typer.Option(help="Only jobs of this task.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many jobs (1-1000).")] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would go.")] = False,
    as_json: Json = False,
) -> None:
    """Cancel jobs that wait to run (queued, scheduled, or waiting for a retry) or run.

    A waiting job goes at once with its attempts; a running one is told to stop at its \
worker's next heartbeat (current_job().cancel_requested; an async task is cancelled) \
and goes when its run ends. One audit record each. A job with a history an operator \
acts on (a recorded failure, a requeue, another job system's origin), a running dead \
letter and a job that ran are refused; exits 1 when a job given by id was refused."""
    with open_app(ctx) as app:
        done = cancel_jobs(
            app.store,
            job_ids=jobs or [],
            queue=queue,
            task=task,
            actor=actor(),
            reason=reason,
            dry_run=dry_run,
            limit=limit,
        )
    _report(done, as_json)
    if done.refused:
        raise typer.Exit(EXIT_ERROR)


def _report(done: Cancellation, as_json: bool) -> None:
    if as_json:
        print_json(asdict(done))
        return
    verb, ask = ("would cancel", "would ask") if done.dry_run else ("cancelled", "asked")
    for job in done.jobs:
        console.print(f"{verb} {job.id} ({job.task} on {job.queue}, {job.status})")
    for job in done.stopping:
        console.print(f"{ask} {job.id} to stop ({job.task} on {job.queue}, running)")
    summary = f"{verb} {len(done.jobs)} job(s), {ask} {len(done.stopping)} running job(s) to stop"
    console.print(Text(summary, style="green"))
    for refusal in done.refused:
        console.print(Text(refusal.message, style="yellow"))
