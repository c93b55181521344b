"""`deadletter recover`: the seed's interactive recovery tool, a numbered menu on stdin.

Each option is the matching command's view over the same operations (option 1 is
`deadletter failures`, 5 is `deadletter requeue JOB`, ...). An error is shown and the
menu comes back; end of input, or q, quits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.text import Text

from deadletter.app import App
from deadletter.cli.context import actor, console, open_app, print_error
from deadletter.cli.details import print_details
from deadletter.cli.export import write_export
from deadletter.cli.failures import job_details
from deadletter.cli.views import action_text, failures_table, recovery_table, stats_table
from deadletter.errors import DeadletterError
from deadletter.ops.export import ExportFormat
from deadletter.ops.failures import list_failures
from deadletter.ops.filters import FailureFilter
from deadletter.ops.recovery import abandon, recovery_queue, requeue

LISTED = 20
QUIT = {"q", "quit", "exit"}


def recover(ctx: typer.Context) -> None:
    """Interactive recovery: list, inspect, requeue, abandon and export failed jobs."""
    with open_app(ctx) as app:
        while True:
            console.print(MENU)
            choice = _ask("choose an option (1-7, q to quit): ")
            if choice is None or choice.lower() in QUIT:
                return
            option = OPTIONS.get(choice)
            if not choice:
                continue  # Enter alone shows the menu again
            if option is None:
                console.print(Text(f"no option {choice!r}", style="yellow"))
                continue
            try:
                option[1](app)
            except DeadletterError as exc:
                print_error(exc)


def _ask(prompt: str) -> str | None:
    """The operator's answer, stripped; None at the end of input (Ctrl-D)."""
    try:
        return console.input(Text(prompt, style="bold")).strip()
    except EOFError:
        console.print()
        return None


def _list(app: App) -> None:
    page = list_failures(app.store, limit=LISTED)
    console.print(failures_table(page.items))


def _stats(app: App) -> None:
    console.print(stats_table(app.store.dlq_stats(now=time.time())))


def _recovery(app: App) -> None:
    console.print(recovery_table(recovery_queue(app.store, limit=LISTED).items))


def _details(app: App) -> None:
    job_id = _ask("job id: ")
    if job_id:
        print_details(console, job_details(app, job_id))


def _requeue(app: App) -> None:
    job_id = _ask("job id to re-queue: ")
    if not job_id:
        return
    reason = _ask("reason (optional): ") or ""
    result = requeue(
        app.store,
        job_id,
        actor=actor(),
        reason=reason,
        policy=app.policy,
        payload_limit=app.settings.payload_limit_bytes,
    )
    console.print(action_text(result))


def _abandon(app: App) -> None:
    job_id = _ask("job id to abandon: ")
    if not job_id:
        return
    reason = _ask("reason (required): ")
    if not reason:
        console.print(Text("not abandoned: a reason is required", style="yellow"))
        return
    console.print(action_text(abandon(app.store, job_id, actor=actor(), reason=reason)))


def _export(app: App) -> None:
    default = f"dlq-failures-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    answer = _ask(f"file (.jsonl, .csv or .json) [{default}]: ") or default
    path = Path(answer).expanduser()
    fmt = FORMATS.get(path.suffix.lower(), ExportFormat.JSONL)
    reason = _ask("reason (required): ")
    if not reason:
        console.print(Text("not exported: a reason is required", style="yellow"))
        return
    size = write_export(app, FailureFilter(), fmt, path, reason=reason)
    console.print(Text(f"exported every failure as {fmt.value} to {path} ({size:,} bytes)"))


FORMATS = {".csv": ExportFormat.CSV, ".json": ExportFormat.JSON}

OPTIONS: dict[str, tuple[str, Callable[[App], None]]] = {
    "1": ("List failed jobs", _list),
    "2": ("View DLQ statistics", _stats),
    "3": ("View recovery queue", _recovery),
    "4": ("Get job details", _details),
    "5": ("Re-queue a job", _requeue),
    "6": ("Abandon a job", _abandon),
    "7": ("Export all failed jobs", _export),
}

MENU = Text(
    "\nDLQ recovery\n"
    + "\n".join(f"  {key}. {label}" for key, (label, _) in OPTIONS.items())
    + "\n  q. Quit"
)
