"""Commands on the queue itself: migrate, worker, jobs."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from deadletter.cli import logformat
from deadletter.cli.context import EXIT_INTERRUPTED, console, load_app, print_json, settings
from deadletter.model import Job, JobState
from deadletter.ops import system
from deadletter.worker.loop import Worker, WorkerStats

APP_HELP = "Your app as 'package.module:app' (an App, or a function of Settings returning one)."
log = logging.getLogger("deadletter.worker")


def migrate(ctx: typer.Context) -> None:
    """Apply pending database migrations (safe to run again)."""
    applied = system.migrate(settings(ctx).database_url)
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


def worker(
    ctx: typer.Context,
    app: Annotated[str, typer.Option(envvar="DEADLETTER_APP", help=APP_HELP)],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue to consume (repeatable).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Execution slots.")] = None,
    burst: Annotated[bool, typer.Option(help="Stop when nothing is left to run.")] = False,
    dlq: Annotated[
        bool, typer.Option("--dlq/--no-dlq", help="Also handle the queues' dead letters.")
    ] = True,
    dlq_only: Annotated[
        bool, typer.Option("--dlq-only", help="Handle dead letters only (scale the DLQ apart).")
    ] = False,
    log_format: logformat.LogFormat = None,
) -> None:
    """Run jobs until SIGTERM or Ctrl-C: running jobs get the grace period to finish; a
    second signal gives their leases back at once (they run again elsewhere). Exits 130
    after Ctrl-C, 0 after SIGTERM."""
    chosen = logformat.checked(log_format or settings(ctx).log_format)
    say: Callable[[str], None] = _plain
    if chosen == "json":
        # Every line, the worker's own included, is a JSON object on stderr.
        logformat.configure(chosen)
        say = log.info
    application = load_app(app, settings(ctx))
    overrides: dict[str, Any] = {"concurrency": concurrency} if concurrency else {}
    runner = application.worker(queues=queue or None, dlq=dlq, dlq_only=dlq_only, **overrides)
    received = _stop_on_signals(runner, log.warning if chosen == "json" else _to_stderr)
    say(f"worker {runner.name} consuming {', '.join(runner.queues)}")
    stats = runner.run(burst=burst)
    application.close()
    say(f"stopped: {summary(stats)}")  # one line in a log
    if signal.SIGINT in received:
        raise typer.Exit(EXIT_INTERRUPTED)


def _plain(text: str) -> None:
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _to_stderr(text: str) -> None:
    # typer.echo, not Rich: a signal handler may interrupt Rich in mid-print.
    typer.echo(text, err=True)


def _stop_on_signals(runner: Worker, say: Callable[[str], None]) -> list[int]:
    """Handle SIGTERM and SIGINT: the first asks for a graceful stop and says what it
    waits for, the next stops now. Returns the signals received, as they come."""
    received: list[int] = []

    def handle(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) > 1:
            runner.stop(now=True)
            say(f"stopping now: giving back {_running(runner)}")
            return
        runner.stop()
        say(
            f"stopping: waiting up to {runner.settings.grace_seconds:g}s for"
            f" {_running(runner)}; press Ctrl-C again to stop now"
            " (they will run again, nothing is lost)"
        )

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    return received


def _running(runner: Worker) -> str:
    count = runner.running()
    return f"{count} running job{'' if count == 1 else 's'}"


def summary(stats: WorkerStats) -> str:
    """Jobs, then dead letters: the handler's letters are not jobs that succeeded."""
    jobs = (
        f"jobs: {stats.succeeded} succeeded, {stats.retried} retried,"
        f" {stats.dead_lettered} dead-lettered, {stats.reclaimed} reclaimed"
    )
    handled = stats.letters_handled + stats.letters_retried + stats.letters_parked
    if not handled:
        return jobs
    return (
        f"{jobs}; dead letters: {stats.letters_handled} handled,"
        f" {stats.letters_retried} to try again, {stats.letters_parked} parked"
    )


def list_jobs(
    ctx: typer.Context,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")] = None,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List jobs, newest first; dead letters are on the '<queue>-dlq' queues."""
    url = settings(ctx).database_url
    found, counts = system.jobs(url, queue=queue, state=state, limit=limit)
    if as_json:
        print_json({"jobs": [job_json(j) for j in found], "count": len(found)})
        return
    console.print(_jobs_table(found))
    total = sum(n for (q, _), n in counts.items() if queue in (None, q))
    console.print(f"{len(found)} shown of {total} jobs" + (f" on {queue}" if queue else ""))


def job_json(job: Job) -> dict[str, object]:
    return {
        "id": job.id,
        "queue": job.queue,
        "task": job.task,
        "status": job.status.value,
        "attempts": job.attempts,
        "retry_count": job.retry_count,
        "worker_losses": job.worker_losses,
        "labels": job.labels,
        "last_error": job.last_error,
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "payload": job.payload,
    }


def _jobs_table(found: list[Job]) -> Table:
    table = Table()
    # Ids are for copying: never cut short; the other columns give way.
    table.add_column("id", no_wrap=True, min_width=max((len(j.id) for j in found), default=2))
    for name in ("queue", "task", "status", "tries"):
        table.add_column(name)
    table.add_column("last error", overflow="fold")
    for job in found:
        error = _short_error(job.last_error or "")[:60]
        table.add_row(job.id, job.queue, job.task, job.status.value, str(job.attempts), error)
    return table


def _short_error(error: str) -> str:
    """`pkg.module.TimeoutError: message` as `TimeoutError: message`, for a narrow table."""
    error_type, colon, message = error.partition(":")
    return error_type.rsplit(".", 1)[-1] + colon + message if colon else error
