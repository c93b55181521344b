"""The `deadletter` command: thin commands over the same calls the library makes.

Exit codes: 0 success, 1 a deadletter error (printed with its causes), 2 bad usage,
3 a check that fired (used by `check`), 130 interrupted.
"""

from __future__ import annotations

import sys

import click
import typer

from deadletter.cli import demo, jobs
from deadletter.cli.context import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    config_callback,
    print_error,
)
from deadletter.errors import DeadletterError

app = typer.Typer(
    name="deadletter",
    help="Background jobs in which no failed job is ever lost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.callback()(config_callback)
app.command("demo")(demo.demo)
app.command("migrate")(jobs.migrate)
app.command("worker")(jobs.worker)
app.command("jobs")(jobs.list_jobs)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except DeadletterError as exc:
        print_error(exc)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
