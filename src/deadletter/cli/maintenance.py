"""Setting up and cleaning up: `deploy` (the seed's deploy:dlq), `archive`, `purge`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deadletter.cli.context import console, errors, open_app, print_json, settings
from deadletter.cli.params import DURATION_HELP, Json, Yes, confirmed, parse_duration
from deadletter.cli.views import stats_table, when
from deadletter.errors import DeadletterError
from deadletter.forensics import open_blob_store
from deadletter.ops import archive as ops
from deadletter.ops import system

T = TypeVar("T")

OlderThan = Annotated[
    float,
    typer.Option(
        "--older-than",
        parser=parse_duration,
        metavar="DURATION",
        help=f"Failures older than this: {DURATION_HELP}.",
    ),
]


def deploy(ctx: typer.Context) -> None:
    """Migrate the database, create the forensics folder or bucket, verify, show stats.

    Safe to run again: what is done already is kept."""
    config = settings(ctx)
    with _step("database", "check database_url (deadletter.toml or DEADLETTER_DATABASE_URL)"):
        applied, figures = system.migrate_and_read(config.database_url, now=time.time())
    console.print(f"database: {', '.join(applied) + ' applied' if applied else 'up to date'}")
    with _step(
        "blob store",
        "check blob_url and s3_endpoint_url, and for S3 the credentials (AWS_ACCESS_KEY_ID,"
        " AWS_SECRET_ACCESS_KEY or a profile) and their rights to create the bucket and write",
    ):
        blobs = open_blob_store(config.blob_url, endpoint_url=config.s3_endpoint_url or None)
        blobs.ensure()
        blobs.check()
    console.print(f"blob store: {blobs.url} is ready and writable")
    console.print(stats_table(figures))


@contextmanager
def _step(name: str, fix: str) -> Iterator[None]:
    """A deploy step whose failure says which step failed and what to do next."""
    try:
        yield
    except DeadletterError as exc:
        raise DeadletterError(
            f"deploy stopped at the {name} (the cause is below).\nnext: {fix}, then run"
            " `deadletter deploy` again (what is done already is kept)"
        ) from exc


def archive(
    ctx: typer.Context, older_than: OlderThan, yes: Yes = False, as_json: Json = False
) -> None:
    """Move failures older than --older-than to the blob store, then out of the database.

    Written as gzipped JSON lines and read back before anything is removed."""
    now = time.time()
    with open_app(ctx) as app:
        count = ops.archivable(app.store, older_than_seconds=older_than, now=now)
        question = (
            f"archive {count} failures from before {when(now - older_than)} to {app.dlq.blobs.url}?"
        )
        if count and not confirmed(question, yes=yes):
            _report({"would_archive": count}, as_json, f"{count} failures to archive")
            return
        done = _with_progress(
            "archive",
            lambda progress: ops.archive(
                app.store, app.dlq.blobs, older_than_seconds=older_than, now=now, progress=progress
            ),
        )
    _report(
        asdict(done),
        as_json,
        f"archived {done.failures} failures in {len(done.blobs)} blobs; removed"
        f" {done.removed.failures} failures and {done.removed.jobs} jobs from the database",
    )


def purge(
    ctx: typer.Context,
    older_than: OlderThan,
    include_unarchived: Annotated[
        bool,
        typer.Option(
            "--include-unarchived", help="Also remove failures never archived: gone for good."
        ),
    ] = False,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Remove failures older than --older-than from the database.

    Only archived ones, unless --include-unarchived."""
    now, archived_only = time.time(), not include_unarchived
    with open_app(ctx) as app:
        count = ops.purgeable(
            app.store, older_than_seconds=older_than, now=now, archived_only=archived_only
        )
        kind = "archived " if archived_only else ""
        question = f"remove {count} {kind}failures from before {when(now - older_than)}?"
        if count == 0 or not confirmed(question, yes=yes):
            _report({"would_remove": count}, as_json, f"{count} {kind}failures to remove")
            return
        done = _with_progress(
            "purge",
            lambda progress: ops.purge(
                app.store,
                older_than_seconds=older_than,
                now=now,
                archived_only=archived_only,
                progress=progress,
            ),
        )
    _report(asdict(done), as_json, f"removed {done.failures} failures and {done.jobs} jobs")


def _with_progress(name: str, work: Callable[[ops.Progress], T]) -> T:
    columns = (TextColumn(f"{name:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors) as progress:
        bar = progress.add_task(name, total=None)
        return work(lambda done, total: progress.update(bar, completed=done, total=total))


def _report(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        print_json(result)
    else:
        console.print(text, markup=False)
