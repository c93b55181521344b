"""`deadletter demo`: the seed's flow end to end on the embedded default."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deadletter import demo as demo_app
from deadletter.app import App
from deadletter.cli.context import console, settings
from deadletter.model import Job, JobState
from deadletter.worker.loop import Worker


def demo(
    ctx: typer.Context,
    jobs: Annotated[int, typer.Option(min=1, max=100_000, help="How many jobs.")] = 60,
) -> None:
    """Enqueue chart-processing jobs with injected faults, run them, show what happened."""
    app = demo_app.build_app(settings(ctx))
    try:
        ids = _enqueue(app, jobs)
        console.print(f"enqueued {len(ids)} jobs on {demo_app.QUEUE} ({app.store.url})")
        _run_with_progress(app.worker(queues=[demo_app.QUEUE]), len(ids))
        _report(app, ids)
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


def _run_with_progress(worker: Worker, total: int) -> None:
    thread = threading.Thread(target=worker.run, kwargs={"burst": True}, daemon=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as progress:
        bar = progress.add_task("running jobs", total=total)
        thread.start()
        while thread.is_alive():
            stats = worker.stats
            progress.update(bar, completed=stats.succeeded + stats.dead_lettered)
            time.sleep(0.1)
        stats = worker.stats
        progress.update(bar, completed=stats.succeeded + stats.dead_lettered)
    console.print(
        f"{stats.succeeded} succeeded, {stats.retried} retries, {stats.dead_lettered} dead-lettered"
    )


def _report(app: App, ids: list[str]) -> None:
    jobs = [job for job in (app.store.get_job(i) for i in ids) if job is not None]
    dead = [job for job in jobs if job.status in (JobState.DEAD_LETTERED, JobState.FAILED)]
    table = Table("job", "site", "tries", "error", "class", title="Dead-lettered jobs")
    for job in dead:
        table.add_row(
            job.id,
            job.labels.get("site_name", ""),
            str(job.attempts),
            (job.last_error or "")[:70],
            _error_class(app, job),
        )
    console.print(table)
    dlq = app.policy(demo_app.QUEUE).dlq_for(demo_app.QUEUE)
    letters = app.store.list_jobs(queue=dlq, limit=100_000)
    console.print(
        f"{len(letters)} dead letters are waiting on {dlq}"
        f" (see them with: deadletter jobs --queue {dlq})"
    )


def _error_class(app: App, job: Job) -> str:
    history = app.store.attempts(job.id)
    last = history[-1].error_class if history else None
    return last.value if last else ""
