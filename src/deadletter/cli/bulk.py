"""Requeue or abandon by filter: the plan first, then a paced run with a progress bar
that Ctrl-C cancels between batches (a batch is one transaction: it is never cut)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deadletter.app import App
from deadletter.cli.context import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    actor,
    console,
    errors,
    print_json,
)
from deadletter.cli.failures import failure_json
from deadletter.cli.params import Yes, confirmed, options_for
from deadletter.cli.views import failures_table
from deadletter.errors import InvalidRequest
from deadletter.ops.bulk import BulkAction, BulkPlan, BulkResult, BulkRun, StopReason, plan_bulk
from deadletter.ops.filters import FailureFilter

SAMPLE = 10


@dataclass(frozen=True, slots=True)
class BulkOptions:
    """How a bulk action goes: on everything (no filter), as a dry run, unasked, how fast."""

    everything: bool = False
    dry_run: bool = False
    yes: bool = False
    rate: float = 10.0


bulk_options = options_for(
    "bulk_options",
    {
        "everything": Annotated[
            bool, typer.Option("--all", help="With no filter: every failed job, knowingly.")
        ],
        "dry_run": Annotated[
            bool, typer.Option("--dry-run", help="Only show how many would move, and some.")
        ],
        "yes": Yes,
        "rate": Annotated[
            float,
            typer.Option(min=0.01, help="Jobs a second: a recovering downstream is not flooded."),
        ],
    },
    BulkOptions,
)
EXIT_CODES = {
    StopReason.DONE: 0,
    StopReason.CANCELLED: EXIT_INTERRUPTED,
    StopReason.HALTED: EXIT_ERROR,
}
DONE = {BulkAction.REQUEUE: "requeued", BulkAction.ABANDON: "abandoned"}


def bulk(
    app: App,
    action: BulkAction,
    failure_filter: FailureFilter,
    options: BulkOptions,
    *,
    reason: str,
    as_json: bool,
) -> None:
    """Show what `action` would move; unless a dry run, confirm, move it, report."""
    plan = plan_bulk(app.store, failure_filter, all=options.everything, sample_size=SAMPLE)
    document: dict[str, Any] = {"plan": _plan_json(action, failure_filter, plan)}
    if not as_json:
        _show_plan(action, failure_filter, plan)
    if not (options.dry_run or plan.count == 0) and not reason.strip():
        raise InvalidRequest("reason", f"is required to {action.value} many jobs (--reason)")
    question = f"{action.value} {plan.count} jobs at {options.rate:g} a second?"
    if options.dry_run or plan.count == 0 or not confirmed(question, yes=options.yes):
        if as_json:
            print_json(document)
        return
    run = BulkRun(
        app.store,
        failure_filter,
        action=action,
        actor=actor(),
        reason=reason,
        policy=app.policy,
        all=options.everything,
        rate=options.rate,
    )
    result = _drive(run, plan.count)
    if as_json:
        print_json({**document, "result": _result_json(result)})
    else:
        _report(result)
    raise typer.Exit(EXIT_CODES[result.stopped])


def _plan_json(action: BulkAction, failure_filter: FailureFilter, plan: BulkPlan) -> dict[str, Any]:
    return {
        "action": action.value,
        "filter": failure_filter.to_json(),
        "count": plan.count,
        "sample": [failure_json(item) for item in plan.sample],
    }


def _show_plan(action: BulkAction, failure_filter: FailureFilter, plan: BulkPlan) -> None:
    first = f"; the first {len(plan.sample)}:" if plan.sample else "."
    console.print(
        f"{plan.count} failed jobs match {failure_filter.describe()} and would be"
        f" {DONE[action]}{first}",
        markup=False,
    )
    if plan.sample:
        console.print(failures_table(plan.sample))


def _drive(run: BulkRun, planned: int) -> BulkResult:
    """Run in a thread while this one draws progress and takes Ctrl-C as a cancel."""
    outcome: list[BulkResult | BaseException] = []
    finished = threading.Event()

    def work() -> None:
        outcome.append(_result(run))
        finished.set()

    # Waited for with sleep, not join: a join cut short by Ctrl-C can leave the thread
    # looking finished while it runs on (CPython before 3.13).
    thread = threading.Thread(target=work, daemon=True)
    columns = (TextColumn(f"{run.action.value:<8}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=errors) as progress:
        bar = progress.add_task(run.action.value, total=planned)
        thread.start()
        while not finished.is_set():
            try:
                time.sleep(0.1)
                done = run.progress
                progress.update(bar, completed=done.moved + done.skipped, total=done.planned)
            except KeyboardInterrupt:
                run.cancel()
                progress.console.print("cancelling after the current batch…")
    found = outcome[0]
    if isinstance(found, BaseException):
        raise found
    return found


def _result(run: BulkRun) -> BulkResult | BaseException:
    try:
        return run.run()
    except BaseException as exc:  # handed to the main thread, which raises it
        return exc


def _result_json(result: BulkResult) -> dict[str, Any]:
    return {**asdict(result.progress), "stopped": result.stopped.value, "detail": result.detail}


def _report(result: BulkResult) -> None:
    progress = result.progress
    style = "green" if result.stopped is StopReason.DONE else "yellow"
    console.print(
        f"[{style}]{result.stopped.value}[/]: {progress.moved} {DONE[progress.action]},"
        f" {progress.skipped} skipped (changed meanwhile)"
    )
    console.print(result.detail, markup=False)
    if result.stopped is not StopReason.DONE:
        console.print("the other jobs are as they were: run the same command again to go on")
