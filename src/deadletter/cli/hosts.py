"""`deadletter import rq|dramatiq|celery`: adopt the failures a host system holds.

The host modules live in deadletter.integrations, which nothing in deadletter imports:
each command loads its host's module by name when it runs, so that the command line
works without the host libraries installed (it says which extra to install).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict
from typing import Annotated, Any

import typer

from deadletter.cli.context import console, open_app, print_json
from deadletter.cli.params import Json
from deadletter.errors import ConfigError

import_app = typer.Typer(
    help="Adopt the failures a host system already holds (docs/integrations.md).",
    no_args_is_help=True,
)

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Count what would be adopted; write nothing.")
]
Queues = Annotated[list[str], typer.Option("--queue", "-q", help="The host's queue (repeatable).")]


@import_app.command("rq")
def import_rq(
    ctx: typer.Context,
    queue: Queues,
    url: Annotated[str, typer.Option(help="RQ's Redis.")] = "redis://127.0.0.1:6379/0",
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Adopt the jobs in the queues' failed job registries (they stay there too)."""
    _run(ctx, "rq", as_json, url=url, queues=queue, dry_run=dry_run)


@import_app.command("dramatiq")
def import_dramatiq(
    ctx: typer.Context,
    queue: Queues,
    url: Annotated[str, typer.Option(help="The broker: redis://... or amqp://...")] = (
        "redis://127.0.0.1:6379/0"
    ),
    namespace: Annotated[str, typer.Option(help="The Redis broker's namespace.")] = "dramatiq",
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Adopt the messages on the queues' dead-letter queues (they stay there too)."""
    _run(ctx, "dramatiq", as_json, url=url, queues=queue, namespace=namespace, dry_run=dry_run)


@import_app.command("celery")
def import_celery(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option(help="Celery's Redis result backend.")],
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Adopt the failed results kept with result_extended = True (they stay there too)."""
    _run(ctx, "celery", as_json, url=backend, dry_run=dry_run)


def _run(ctx: typer.Context, system: str, as_json: bool, **options: Any) -> None:
    try:
        host = importlib.import_module(f"deadletter.integrations.{system}")
    except ImportError as exc:
        raise ConfigError(str(exc)) from exc
    with open_app(ctx) as app:
        report = host.import_failures(app, **options)
    if as_json:
        print_json(asdict(report))
        return
    verb = "would adopt" if report.dry_run else "adopted"
    console.print(
        f"{system}: {report.found} failures found, {verb} {report.adopted},"
        f" {report.known} already here"
    )
