"""`deadletter demo`: the seed's flow end to end on the embedded default."""

from __future__ import annotations

import statistics
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deadletter import demo as demo_app
from deadletter.app import App
from deadletter.cli.context import console, print_json, settings
from deadletter.cli.serve import base_url
from deadletter.model import ErrorClass, JobState, Route
from deadletter.ops.reports import failures_json, stats_json
from deadletter.store.reports import FailureRow
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
        _report(app, ids)
    finally:
        app.close()


def _enqueue(app: App, count: int) -> list[str]:
    return app.enqueue_many(demo_app.job_specs(app, count))


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
    _say(
        f"This run: {done - dead} of {done} jobs succeeded, some after a retry;"
        f" {dead} failed for good and became dead letters, and the DLQ handler"
        f" handled {handled} of them ({worker.stats.retried} retries in all)."
    )


def _finished(app: App, dlq: str) -> tuple[int, int, int]:
    """Jobs of the demo queue finished and dead-lettered, and dead letters handled."""
    counts = app.store.count_states()
    dead = counts.get((demo_app.QUEUE, JobState.DEAD_LETTERED), 0)
    dead += counts.get((demo_app.QUEUE, JobState.FAILED), 0)
    done = dead + counts.get((demo_app.QUEUE, JobState.SUCCEEDED), 0)
    return done, dead, counts.get((dlq, JobState.SUCCEEDED), 0)


def _report(app: App, ids: list[str]) -> None:
    """What happened to this run's failures, in sentences; then the seed's two answers
    (the database's totals, one failure in full); then what to try next."""
    mine = set(ids)
    rows = [row for row in app.store.recent_failures(limit=100_000) if row.job_id in mine]
    console.print()
    for line in _what_happened(app, rows):
        _say(line, indent="  ")
    _say(_forensics_line(app, rows))
    console.rule("GET /api/queue/dlq/stats: totals of every run so far")
    print_json(stats_json(app.store.dlq_stats(now=time.time())))
    console.rule("GET /api/queue/dlq/failures?limit=5: the first in full")
    _failures_answer(app.store.recent_failures(limit=5))
    console.rule("try next")
    for line in _next_steps(app):
        console.print(line, markup=False, soft_wrap=True)


def _say(text: str, *, indent: str = "") -> None:
    """A sentence wrapped to the terminal, its later lines indented by `indent`."""
    width = max(console.width, 40)
    console.print(textwrap.fill(text, width, subsequent_indent=indent), markup=False)


def _what_happened(app: App, rows: Sequence[FailureRow]) -> list[str]:
    """One sentence per class: how many, of what, and what was done about them."""
    routes = routes_from(app.settings)
    lines = []
    for error_class in ErrorClass:
        found = [row for row in rows if row.error_class == error_class.value]
        if not found:
            continue
        retries = max(row.attempts - 1 for row in found)
        tried = (
            f"retried {retries} times, then" if retries else "not retried (same input, same error);"
        )
        kinds = ", ".join(sorted({_kind(row) for row in found}))
        done = _ROUTE_TEXT[routes[error_class]]
        lines.append(f"{len(found)} {error_class.value} ({kinds}): {tried} {done}.")
    return lines


def _kind(row: FailureRow) -> str:
    """The rule that classified a failure (`timeout:type` as `timeout`), or its error's
    type when no rule did."""
    if row.rule and row.rule != "default":
        return row.rule.split(":")[0]
    error_type = (row.last_error or "").partition(":")[0]
    return error_type.rsplit(".", 1)[-1] or "unknown"


def _failures_answer(rows: Sequence[FailureRow]) -> None:
    """The answer's first failure as the API gives it, the others in a line each."""
    failures = failures_json(rows)["failures"]
    assert isinstance(failures, list)
    if not failures:
        console.print("no failures")
        return
    print_json(failures[0])
    if len(rows) > 1:
        console.print(f"and the other {len(rows) - 1}:")
    width = max(console.width, 40)
    for row in rows[1:]:
        line = f"  {row.job_id}  {row.error_class}: {row.error_message}"
        console.print(line if len(line) <= width else line[: width - 1] + "…", markup=False)


def _forensics_line(app: App, rows: Sequence[FailureRow]) -> str:
    """How many forensic records the failures have, and their size (the seed: ~2 KB)."""
    sizes = sorted(len(app.dlq.blobs.get(row.forensics_key)) for row in rows if row.forensics_key)
    if not sizes:
        return f"No forensic records in {app.dlq.blobs.url}."
    return (
        f"Each failure has a forensic record ({statistics.median(sizes):,.0f} B typical) in"
        f" {app.dlq.blobs.url}, and every step is in the DLQ log, {app.dlq.events.path}."
    )


def _next_steps(app: App) -> list[str]:
    url = base_url(app.settings.serve)
    return [
        "deadletter failures   the failures, newest first; `deadletter show ID` for one",
        "deadletter recover    requeue or abandon them, one by one or by filter",
        f"deadletter serve      the dashboard at {url}/ and the HTTP API",
        "                      (docs at /docs); log in with the token it prints",
    ]


_ROUTE_TEXT = {
    Route.RECOVERY: "put in the recovery queue, to requeue once the cause is gone",
    Route.NOTIFY_USER: "the user was notified, with personal data redacted",
    Route.ALERT_OPS: "ops were alerted, once per cause",
    Route.REVIEW: "written to the review log for a person to look at",
}
