"""The fleet: `queue pause|resume|list` and `workers` (issue 12). Pauses and resumes
are audited as `cli:<os user>`."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from deadletter.app import App
from deadletter.cli.context import actor, console, open_app, print_json
from deadletter.cli.params import Json
from deadletter.cli.views import add_row, ago, when
from deadletter.ops import fleet
from deadletter.ops.fleet import PauseResult, QueueView
from deadletter.store.fleet import WorkerPresence

queue_app = typer.Typer(
    help="Pause and resume queues, and list them.", no_args_is_help=True, rich_markup_mode=None
)

Name = Annotated[str, typer.Argument(help="The queue's name.")]
Reason = Annotated[str, typer.Option(help="Why, for the audit log (required).")]
Dlq = Annotated[
    bool,
    typer.Option(
        "--dlq",
        help="Act on the queue's dead-letter queue instead: its letters are still"
        " captured, but not handled while it is paused.",
    ),
]


def _target(app: App, name: str, dlq: bool) -> str:
    return app.policy(name).dlq_for(name) if dlq else name


@queue_app.command("pause")
def pause(
    ctx: typer.Context, name: Name, reason: Reason, dlq: Dlq = False, as_json: Json = False
) -> None:
    """Stop workers taking the queue's jobs: enqueueing goes on, running jobs finish,
    jobs leased ahead and not started are given back. Holds across restarts."""
    with open_app(ctx) as app:
        result = fleet.pause_queue(app.store, _target(app, name, dlq), actor=actor(), reason=reason)
    _report(result, as_json)


@queue_app.command("resume")
def resume(
    ctx: typer.Context, name: Name, reason: Reason, dlq: Dlq = False, as_json: Json = False
) -> None:
    """Let workers take the queue's jobs again."""
    with open_app(ctx) as app:
        result = fleet.resume_queue(
            app.store, _target(app, name, dlq), actor=actor(), reason=reason
        )
    _report(result, as_json)


@queue_app.command("list")
def list_queues(ctx: typer.Context, as_json: Json = False) -> None:
    """Queues with their jobs by state, whether paused, and their live consumers."""
    with open_app(ctx) as app:
        views = fleet.queues(app.store, gone_after=app.settings.worker.gone_after_seconds)
    if as_json:
        print_json({"queues": [fleet.queue_json(view) for view in views]})
    else:
        console.print(queues_table(views))


def workers(ctx: typer.Context, as_json: Json = False) -> None:
    """Live workers: those whose last heartbeat is within [worker] gone_after_seconds."""
    with open_app(ctx) as app:
        found = fleet.live_workers(app.store, gone_after=app.settings.worker.gone_after_seconds)
    now = time.time()
    if as_json:
        print_json({"workers": [fleet.worker_json(w, now=now) for w in found]})
        return
    console.print(workers_table(found, now=now))
    console.print(f"{len(found)} live worker{'' if len(found) == 1 else 's'}", markup=False)


def _report(result: PauseResult, as_json: bool) -> None:
    if as_json:
        print_json(fleet.result_json(result))
        return
    state = "paused" if result.paused else "resumed"
    if not result.changed:
        state = "already paused" if result.paused else "was not paused"
    console.print(Text(f"queue {result.queue}: {state}", style="green"))


def queues_table(views: list[QueueView]) -> Table:
    table = Table(
        "queue",
        "waiting",
        "running",
        "failed",
        "done/s",
        "failing/s",
        "state",
        "consumers",
        title="queues",
    )
    for view in views:
        state = Text("active", style="green")
        if view.pause is not None:
            state = Text(
                f"paused {ago(view.pause.paused_at)} by {view.pause.paused_by}:"
                f" {view.pause.reason}",
                style="yellow",
            )
        add_row(
            table,
            view.queue,
            str(view.waiting),
            str(view.counts.get("running", 0)),
            str(view.counts.get("failed", 0) + view.counts.get("dead_lettered", 0)),
            f"{view.throughput.succeeded:.1f}",
            f"{view.throughput.failed:.1f}",
            state,
            ", ".join(view.consumers) or "none",
        )
    return table


def workers_table(found: list[WorkerPresence], *, now: float) -> Table:
    table = Table(
        "worker",
        "pid",
        "version",
        "queues",
        "slots",
        "started",
        "heartbeat",
        "running now",
        title="live workers",
    )
    for worker in found:
        running = "\n".join(
            f"{job.id} {job.task} ({now - job.started_at:.0f}s)" for job in worker.running
        )
        add_row(
            table,
            worker.name,
            str(worker.pid),
            worker.version,
            ", ".join(worker.queues),
            f"{len(worker.running)}/{worker.concurrency}",
            when(worker.started_at),
            ago(worker.heartbeat_at),
            running or "idle",
        )
    return table
