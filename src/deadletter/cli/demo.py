"""`deadletter demo`: the seed's flow end to end on the embedded default."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deadletter import demo as demo_app
from deadletter.app import App
from deadletter.cli.context import console, print_json, settings
from deadletter.model import ErrorClass, JobState, Route
from deadletter.ops.reports import failures_json, stats_json
from deadletter.wiring import routes_from


def demo(
    ctx: typer.Context,
    jobs: Annotated[int, typer.Option(min=1, max=100_000, help="How many jobs.")] = 60,
) -> None:
    """Enqueue chart-processing jobs with injected faults, run them, show what happened."""
    app = demo_app.build_app(settings(ctx))
    try:
        ids = _enqueue(app, jobs)
        console.print(f"enqueued {len(ids)} jobs on {demo_app.QUEUE} ({app.store.url})")
        _run_with_progress(app, len(ids))
        _report(app)
    finally:
        app.close()


def _enqueue(app: App, count: int) -> list[str]:
    task = app.tasks["charts.render"]
    specs = [
        task.spec(site, n, fault).options(labels={"site_name": site, "user": f"{site}@example.com"})
        for n, fault in enumerate(demo_app.faults_for(count))
        for site in [demo_app.SITES[n % len(demo_app.SITES)]]
    ]
    return app.enqueue_many(specs)


def _run_with_progress(app: App, total: int) -> None:
    """Run a burst worker on the demo queue and its DLQ, with one bar for each."""
    dlq = app.policy(demo_app.QUEUE).dlq_for(demo_app.QUEUE)
    worker = app.worker(queues=[demo_app.QUEUE])
    before = _finished(app, dlq)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True}, daemon=True)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        jobs_bar = progress.add_task("jobs finished", total=total)
        letters_bar = progress.add_task("dead letters handled", total=None)
        thread.start()
        while True:
            alive = thread.is_alive()
            now = _finished(app, dlq)
            done, dead, handled = (now[i] - before[i] for i in range(3))
            progress.update(jobs_bar, completed=done)
            progress.update(letters_bar, completed=handled, total=dead)
            if not alive:
                break
            time.sleep(0.1)
    stats = worker.stats
    console.print(
        f"{done - dead} succeeded, {dead} dead-lettered after {stats.retried} retries;"
        f" {handled} dead letters handled"
    )


def _finished(app: App, dlq: str) -> tuple[int, int, int]:
    """Jobs of the demo queue finished and dead-lettered, and dead letters handled."""
    counts = app.store.count_states()
    dead = counts.get((demo_app.QUEUE, JobState.DEAD_LETTERED), 0)
    dead += counts.get((demo_app.QUEUE, JobState.FAILED), 0)
    done = dead + counts.get((demo_app.QUEUE, JobState.SUCCEEDED), 0)
    return done, dead, counts.get((dlq, JobState.SUCCEEDED), 0)


def _report(app: App) -> None:
    now = time.time()
    console.rule("GET /api/queue/dlq/stats")
    print_json(stats_json(app.store.dlq_stats(now=now)))
    console.rule("GET /api/queue/dlq/failures?limit=5")
    print_json(failures_json(app.store.recent_failures(limit=5)))
    console.rule("where the failures went")
    console.print(_routes_table(app))
    console.print(_forensics_line(app))
    console.print(f"DLQ log: {app.dlq.events.path}")


def _forensics_line(app: App) -> str:
    """How many forensic records the failures have, and their size (the seed: ~2 KB)."""
    keys = [row.forensics_key for row in app.store.recent_failures(limit=100_000)]
    sizes = sorted(len(app.dlq.blobs.get(key)) for key in keys if key)
    if not sizes:
        return f"forensic records: none in {app.dlq.blobs.url}"
    return (
        f"forensic records: {len(sizes)} in {app.dlq.blobs.url},"
        f" median {statistics.median(sizes):,.0f} B, largest {sizes[-1]:,} B"
    )


def _routes_table(app: App) -> Table:
    rows = app.store.recent_failures(limit=100_000)
    table = Table("class", "failures", "routed to")
    routes = routes_from(app.settings)
    for error_class in ErrorClass:
        count = sum(1 for row in rows if row.error_class == error_class.value)
        table.add_row(error_class.value, str(count), _ROUTE_TEXT[routes[error_class]])
    return table


_ROUTE_TEXT = {
    Route.RECOVERY: "recovery queue (dlq_recovery_queue)",
    Route.NOTIFY_USER: "user notification (user_notifications)",
    Route.ALERT_OPS: "ops alert (ops_alerts)",
    Route.REVIEW: "review log (dlq_review_log)",
}
