"""The `deadletter` command: thin commands over the same calls the library makes.

Exit codes: 0 success, 1 a deadletter error (printed with its causes), 2 bad usage
(an invalid request included), 3 a check that fired (used by `check`), 4 work waiting
that no live worker consumes (used by `check`), 130 interrupted.
"""

from __future__ import annotations

import sys

import click
import typer

from deadletter.cli import (
    cancel,
    demo,
    dlq,
    export,
    failures,
    fleet,
    hosts,
    jobs,
    logs,
    maintenance,
    monitor,
    reclassify,
    recover,
    recovery,
    schedules,
    serve,
    tokens,
)
from deadletter.cli.context import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    config_callback,
    print_error,
)
from deadletter.errors import DeadletterError, InvalidRequest

app = typer.Typer(
    name="deadletter",
    help="Background jobs in which no failed job is ever lost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as click writes it: Typer's panels give a flag a `<bool>` as if it took
    # a value, and squeeze the help text into a third of an 80-column terminal.
    rich_markup_mode=None,
)
app.callback()(config_callback)
app.command("demo")(demo.demo)
app.command("migrate")(jobs.migrate)
app.command("worker")(jobs.worker)
app.command("jobs")(jobs.list_jobs)
# The operator's commands; docs/cli.md describes each.
app.command("stats")(monitor.stats)
app.command("check")(monitor.check)
app.add_typer(fleet.queue_app, name="queue")
app.command("workers")(fleet.workers)
app.command("schedules")(schedules.schedules)
app.command("failures")(failures.failures)
app.command("show")(failures.show)
app.command("groups")(failures.groups)
app.command("export")(export.export)
app.command("requeue")(recovery.requeue)
app.command("abandon")(recovery.abandon)
app.command("cancel")(cancel.cancel)
app.command("reclassify")(reclassify.reclassify)
app.add_typer(dlq.dlq_app, name="dlq")
app.command("recovery")(recovery.recovery)
app.add_typer(recovery.review_app, name="review")
app.command("recover")(recover.recover)
app.command("logs")(logs.logs)
app.command("deploy")(maintenance.deploy)
app.command("archive")(maintenance.archive)
app.command("purge")(maintenance.purge)
app.add_typer(hosts.import_app, name="import")
# The HTTP API and its tokens; docs/api.md describes them.
app.command("serve")(serve.serve)
app.add_typer(tokens.token_app, name="token")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except InvalidRequest as exc:
        print_error(exc)
        sys.exit(EXIT_USAGE)
    except DeadletterError as exc:
        print_error(exc)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except (click.exceptions.Exit, typer.Exit) as exc:
        sys.exit(exc.exit_code)
    except (click.ClickException, typer.TyperException) as exc:
        _show_usage_error(exc)
        sys.exit(EXIT_USAGE)
    except (click.exceptions.Abort, typer.Abort):
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def _show_usage_error(exc: Exception) -> None:
    # Typer (0.2x on) vendors click: its usage errors derive from TyperException, not
    # from click's, and like click's they know how to show themselves with the usage.
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        print_error(exc)
