"""Rich views of what operators read, shared by the commands and `deadletter recover`.

Names in the views are those of the JSON (`--json`), so that what a person reads and
what a script parses say the same thing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rich.table import Table
from rich.text import Text

from deadletter.cli.context import console, print_json
from deadletter.ops.failures import FailureItem, Group
from deadletter.ops.filters import Page
from deadletter.ops.recovery import ActionResult, RecoveryEntry
from deadletter.ops.reports import dlq_figures
from deadletter.ops.review import ReviewEntry
from deadletter.ops.thresholds import Check
from deadletter.store.reports import DlqStats

T = TypeVar("T")

# A message is cut to this many characters in a table; `show` prints it whole.
SHORT = 60
ID_WIDTH = 44

STAT_MEANINGS = {
    "total_failed": "jobs failed now, each counted once",
    "permanent_failures": "failed jobs not waiting in the recovery queue",
    "last_24h": "jobs that failed in the last 24 hours",
    "avg_retries": "retries per failed job, on average",
    "total_in_recovery": "rows of the recovery queue",
    "pending_recovery": "waiting for an operator: requeue or abandon",
    "recovered": "requeued, then succeeded",
    "abandoned": "given up on, with a reason",
    "requeued": "requeued, not run to an end yet",
}


def when(at: float | None) -> str:
    """Local time to the second, as `date` shows it; empty when there is none."""
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def ago(at: float) -> str:
    """How long ago, in the largest whole unit: short enough for a table column."""
    seconds = max(0.0, time.time() - at)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def short_type(error_type: str | None) -> str:
    """`package.module.TimeoutError` as `TimeoutError`, for a narrow column."""
    return (error_type or "").rsplit(".", 1)[-1]


def error_text(error_type: str | None, message: str | None, *, limit: int = SHORT) -> str:
    text = ": ".join(part for part in (short_type(error_type), message or "") if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def id_column(table: Table, name: str, ids: Sequence[str]) -> None:
    """A first column as wide as its widest id: ids are for copying, never cut short.
    What is under an id wraps within ID_WIDTH, to leave the other columns room."""
    widest = max((len(i) for i in ids), default=2)
    table.add_column(name, min_width=widest, max_width=max(widest, ID_WIDTH), overflow="fold")


def add_row(table: Table, *cells: str | Text) -> None:
    """A row of plain text: what jobs and operators wrote is never read as Rich markup
    (a redacted `[EMAIL]` would be taken for a style)."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def stats_table(stats: DlqStats) -> Table:
    """The seed's statistics under their JSON names, with what each counts."""
    table = Table("figure", "value", "meaning", title="DLQ statistics")
    for name, value in dlq_figures(stats).items():
        if isinstance(value, dict):
            for inner, count in value.items():
                add_row(table, f"recovery.{inner}", str(count), STAT_MEANINGS.get(inner, ""))
        else:
            add_row(table, name, f"{value:g}", STAT_MEANINGS.get(name, ""))
    return table


def stacked(top: str, below: str) -> Text:
    """Two lines in one cell, the second dimmed: a table stays readable when narrow."""
    return Text.assemble(top, "\n", (below, "dim"))


def failures_table(items: Sequence[FailureItem]) -> Table:
    table = Table(title="failures, newest first")
    id_column(table, "job id / error", [item.job_id for item in items])
    table.add_column("class / queue", min_width=12)
    table.add_column("failed", no_wrap=True)
    table.add_column("now", no_wrap=True)
    for item in items:
        add_row(
            table,
            stacked(item.job_id, error_text(item.error_type, item.error_message)),
            stacked(item.error_class, item.queue),
            ago(item.failed_at),
            item.recovery_status or item.job_status or "gone",
        )
    return table


def groups_table(groups: Sequence[Group]) -> Table:
    table = Table(title="failure groups (one cause each)")
    id_column(table, "group / sample", [group.fingerprint for group in groups])
    table.add_column("class / queue", min_width=12)
    table.add_column("count", justify="right", min_width=5)
    table.add_column("last / first seen", no_wrap=True)
    for group in groups:
        add_row(
            table,
            stacked(group.fingerprint, error_text(group.error_type, group.sample_message)),
            stacked(group.error_class, group.queue),
            str(group.count),
            stacked(ago(group.last_seen), ago(group.first_seen)),
        )
    return table


def recovery_table(entries: Sequence[RecoveryEntry]) -> Table:
    table = Table(title="recovery queue, most recently changed first")
    id_column(table, "job id / reason", [entry.job_id for entry in entries])
    table.add_column("status / queue")
    table.add_column("requeues", justify="right")
    table.add_column("changed", no_wrap=True)
    for entry in entries:
        add_row(
            table,
            stacked(entry.job_id, entry.reason or ""),
            stacked(entry.status, entry.queue),
            str(entry.requeue_count),
            ago(entry.updated_at),
        )
    return table


def review_table(entries: Sequence[ReviewEntry]) -> Table:
    # Three columns, two lines a row: the entry's id alone is 41 characters, and the
    # table must fit 80 columns without cutting it.
    table = Table(title="review log (UNKNOWN failures), newest first")
    id_column(table, "entry / error", [entry.dead_letter_id for entry in entries])
    table.add_column("queue / logged")
    table.add_column("reviewed")
    for entry in entries:
        reviewed = (
            stacked(entry.reviewed_by or "", ago(entry.reviewed_at)) if entry.reviewed_at else ""
        )
        add_row(
            table,
            stacked(entry.dead_letter_id, error_text(entry.error_type, entry.error_message)),
            stacked(entry.queue or "", ago(entry.created_at)),
            reviewed,
        )
    return table


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table("metric", "value", "threshold", "state", title="key metrics")
    styles = {"ok": "green", "review": "yellow", "alert": "bold red"}
    for check in checks:
        state = Text(check.state, style=styles[check.state])
        add_row(table, check.metric, f"{check.value:g}", f"> {check.threshold:g}", state)
    return table


def action_text(result: ActionResult) -> Text:
    return Text(result.message, style="green" if result.done else "yellow")


def show_page(
    page: Page[T],
    *,
    name: str,
    noun: str,
    as_json: bool,
    to_json: Callable[[T], dict[str, Any]],
    table: Callable[[Sequence[T]], Table],
) -> None:
    """A page as JSON under `name`, with its count and next cursor; or as a table, with
    how many `noun` it shows and how to see more."""
    if as_json:
        items = [to_json(item) for item in page.items]
        print_json({name: items, "count": len(items), "next_cursor": page.next_cursor})
        return
    console.print(table(page.items))
    shown = f"{len(page.items)} {noun} shown"
    more = f"; more with --cursor {page.next_cursor}" if page.next_cursor else ""
    console.print(shown + more, markup=False, soft_wrap=True)
