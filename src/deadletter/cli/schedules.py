"""`deadletter schedules`: the periodic jobs with their last tick and next run (issue 12)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from deadletter.app import App
from deadletter.cli.context import console, load_app, open_app, print_json, settings
from deadletter.cli.params import Json
from deadletter.cli.views import add_row, when
from deadletter.ops.schedules import ScheduleView, schedule_json, schedule_views

AppOption = Annotated[
    str | None,
    typer.Option(
        envvar="DEADLETTER_APP",
        help="Your app as 'package.module:app', for its @app.periodic schedules and its"
        " tasks' queues; without it, the config's [schedules] only.",
    ),
]


def schedules(ctx: typer.Context, app: AppOption = None, as_json: Json = False) -> None:
    """Periodic jobs: cron, time zone, task, the last tick dealt with and the next run."""
    with open_app(ctx) as plain:
        application: App = load_app(app, settings(ctx)) if app else plain
        try:
            views = schedule_views(application.store, application.schedules(), now=time.time())
        finally:
            if application is not plain:
                application.close()
    if as_json:
        print_json({"schedules": [schedule_json(view) for view in views]})
        return
    console.print(_table(views))


def _table(views: list[ScheduleView]) -> Table:
    table = Table("name", "cron", "time zone", "task", "queue", "missed", "last tick", "next run")
    for view in views:
        s = view.schedule
        last = when(view.last_tick) if view.last_tick is not None else "not started"
        upcoming = when(view.next_run) + (" (catching up)" if view.missed else "")
        add_row(table, s.name, s.cron, s.timezone, s.task, s.queue or "-", s.missed, last, upcoming)
    return table
