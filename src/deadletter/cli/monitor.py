"""The daily checks: `stats` (the seed's dlq:stats) and `check` (its key metrics)."""

from __future__ import annotations

import time
from dataclasses import asdict

import typer
from rich.text import Text

from deadletter.cli.context import EXIT_CHECK_FIRED, console, open_app, print_json
from deadletter.cli.params import Json
from deadletter.cli.views import checks_table, stats_table
from deadletter.ops.reports import stats_json
from deadletter.ops.thresholds import MEANINGS, evaluate


def stats(ctx: typer.Context, as_json: Json = False) -> None:
    """DLQ statistics; --json answers as GET /api/queue/dlq/stats does."""
    with open_app(ctx) as app:
        figures = app.store.dlq_stats(now=time.time())
    if as_json:
        print_json(stats_json(figures))
    else:
        console.print(stats_table(figures))


def check(ctx: typer.Context, as_json: Json = False) -> None:
    """The key metrics against their thresholds (deadletter.toml); exit code 3 if one fires."""
    with open_app(ctx) as app:
        checks = evaluate(app.store.dlq_stats(now=time.time()), app.settings.thresholds)
    fired = [check for check in checks if check.fired]
    if as_json:
        rows = [{**asdict(check), "state": check.state} for check in checks]
        print_json({"checks": rows, "fired": [check.metric for check in fired]})
    else:
        console.print(checks_table(checks))
        for check in fired:
            console.print(Text(f"{check.metric}: {MEANINGS[check.metric]}"))
    if fired:
        raise typer.Exit(EXIT_CHECK_FIRED)
