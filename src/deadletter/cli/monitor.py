"""The daily checks: `stats` (the seed's dlq:stats) and `check` (its key metrics, and
that every queue with work waiting has a live consumer)."""

from __future__ import annotations

import time
from dataclasses import asdict

import typer
from rich.text import Text

from deadletter.cli.context import (
    EXIT_CHECK_FIRED,
    EXIT_NO_CONSUMER,
    console,
    open_app,
    print_json,
)
from deadletter.cli.params import Json
from deadletter.cli.views import ago, checks_table, stats_table
from deadletter.ops import fleet
from deadletter.ops.reports import stats_json
from deadletter.ops.thresholds import MEANINGS, evaluate


def stats(ctx: typer.Context, as_json: Json = False) -> None:
    """DLQ statistics and paused queues; --json answers as GET /api/queue/dlq/stats does."""
    with open_app(ctx) as app:
        figures = app.store.dlq_stats(now=time.time())
        paused = app.store.paused_queues()
    if as_json:
        print_json(stats_json(figures, paused))
        return
    console.print(stats_table(figures))
    for pause in paused.values():
        console.print(
            Text(
                f"queue {pause.queue} is paused ({ago(pause.paused_at)} by {pause.paused_by}:"
                f" {pause.reason})",
                style="yellow",
            ),
            soft_wrap=True,
        )


def check(ctx: typer.Context, as_json: Json = False) -> None:
    """The key metrics against their thresholds (deadletter.toml), and a live consumer
    for every queue with work waiting; exit code 3 if a threshold fires, 4 if work
    waits on a queue that no live worker consumes (4 wins when both)."""
    with open_app(ctx) as app:
        checks = evaluate(app.store.dlq_stats(now=time.time()), app.settings.thresholds)
        orphans = fleet.unconsumed(app.store, gone_after=app.settings.worker.gone_after_seconds)
    fired = [check for check in checks if check.fired]
    if as_json:
        rows = [{**asdict(check), "state": check.state} for check in checks]
        print_json(
            {
                "checks": rows,
                "fired": [check.metric for check in fired],
                "unconsumed": [asdict(orphan) for orphan in orphans],
            }
        )
    else:
        console.print(checks_table(checks))
        for check in fired:
            console.print(Text(f"{check.metric}: {MEANINGS[check.metric]}"))
        for orphan in orphans:
            console.print(
                Text(
                    f"queue {orphan.queue}: {orphan.waiting} waiting and no live worker"
                    " consumes it; start one (`deadletter worker`)",
                    style="bold red",
                ),
                soft_wrap=True,
            )
    if orphans:
        raise typer.Exit(EXIT_NO_CONSUMER)
    if fired:
        raise typer.Exit(EXIT_CHECK_FIRED)
