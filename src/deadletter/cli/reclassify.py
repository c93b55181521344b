"""`deadletter reclassify`: classify recorded failures again by the current rules."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.text import Text

from deadletter.cli.context import actor, console, open_app, print_json
from deadletter.cli.params import Json
from deadletter.ops.reclassify import Reclassification
from deadletter.ops.reclassify import reclassify as reclassify_failures


def reclassify(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why the failures are re-classified (required).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would move.")] = False,
    as_json: Json = False,
) -> None:
    """Classify the current failures again by the rules of the config, after they changed.

    The latest failure of each failed job that is not abandoned is classified again; \
one whose class changed moves to its new route (recovery queue, user notification, \
ops alert, review log), one audit record each. A notification or alert already raised \
for a failure is not raised again. Run with --dry-run first."""
    with open_app(ctx) as app:
        done = reclassify_failures(
            app.store, app.dlq.handler, actor=actor(), reason=reason, dry_run=dry_run
        )
    _report(done, as_json)


def _report(done: Reclassification, as_json: bool) -> None:
    if as_json:
        print_json(asdict(done))
        return
    verb = "would move" if done.dry_run else "moved"
    for move in done.moves:
        console.print(
            f"{verb} {move.job_id} ({move.dead_letter_id}): {move.was} -> {move.now}"
            f" (rule {move.rule}), route {move.route}"
        )
    for change, count in done.counts.items():
        console.print(f"{change}: {count}")
    summary = f"{verb} {len(done.moves)} of {done.examined} current failure(s)"
    console.print(Text(summary, style="green"))
