"""What every command shares: settings, the app, output helpers and exit codes."""

from __future__ import annotations

import getpass
import importlib
import importlib.metadata
import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from deadletter.app import App
from deadletter.config import Settings, load_settings
from deadletter.errors import ConfigError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FIRED = 3
EXIT_NO_CONSUMER = 4
EXIT_INTERRUPTED = 130

console = Console()
errors = Console(stderr=True)


@dataclass
class CliContext:
    settings: Settings


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"deadletter {importlib.metadata.version('deadletter')}")
        raise typer.Exit()


def config_callback(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="DEADLETTER_CONFIG",
            help="Config file (default: ./deadletter.toml if present). Settings can also"
            " come from DEADLETTER_* variables, e.g. DEADLETTER_DATABASE_URL.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the version of deadletter and exit.",
        ),
    ] = False,
) -> None:
    ctx.obj = CliContext(load_settings(config, warn=warn))


def warn(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def settings(ctx: typer.Context) -> Settings:
    obj: CliContext = ctx.ensure_object(CliContext)
    return obj.settings


@contextmanager
def open_app(ctx: typer.Context, *, fail_fast: bool = True) -> Iterator[App]:
    """The app of the settings, closed after the command: operator commands need its
    store, queue policies and blob store, not the user's tasks. A command that runs
    once fails at once when the database cannot be reached (`fail_fast`)."""
    app = App(settings(ctx), fail_fast=fail_fast)
    try:
        yield app
    finally:
        app.close()


def actor() -> str:
    """Who the audit log says acted. The CLI holds the database's credentials, so it acts
    with full rights; API token scopes govern remote access only."""
    return f"cli:{getpass.getuser()}"


def load_app(spec: str, settings: Settings) -> App:
    """`module:attribute`, where the attribute is an App or a function of Settings -> App.

    The working directory comes first on the import path, as with Celery, RQ and
    Dramatiq: `--app myjobs:app` run beside `myjobs.py` finds it."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--app {spec!r} must look like 'package.module:app'")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    target = getattr(_import_app_module(module_name, spec), attribute, None)
    if target is None:
        raise ConfigError(f"--app {spec!r}: module {module_name!r} has no {attribute!r}")
    if isinstance(target, App):
        return target
    if callable(target):
        built = target(settings)
        if isinstance(built, App):
            return built
    raise ConfigError(f"{spec!r} is neither a deadletter.App nor a function returning one")


def _import_app_module(module_name: str, spec: str) -> ModuleType:
    """The module, or a ConfigError saying in one line why it would not import: the
    user's own code failing to import is their error to read, not a traceback of ours."""
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # whatever the user's module raises while it is imported
        problem = _import_problem(exc, module_name)
    raise ConfigError(f"--app {spec!r}: {problem}")


def _import_problem(exc: Exception, module_name: str) -> str:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and f"{module_name}.".startswith(f"{missing}."):
        return (
            f"no module named {missing!r} in {Path.cwd()} or on the Python path;"
            " run the command from the folder that holds it, or set PYTHONPATH"
        )
    if missing:
        return f"{module_name!r} imports {missing!r}, which is not installed"
    if isinstance(exc, SyntaxError):
        return f"{module_name!r} has a syntax error: {exc.msg} ({exc.filename}, line {exc.lineno})"
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    where = f"{frame.filename}, line {frame.lineno}"
    return f"importing {module_name!r} raised {type(exc).__name__}: {exc} ({where})"


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def print_error(exc: BaseException) -> None:
    """The error, and the chain of causes under it a line each; lines are never
    wrapped, so that a log search finds them whole."""
    errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    cause = _cause(exc)
    while cause is not None:
        errors.print(
            f"  caused by {type(cause).__name__}: {escape(_first_line(cause))}",
            highlight=False,
            soft_wrap=True,
        )
        cause = _cause(cause)


def _first_line(exc: BaseException) -> str:
    """A cause is often a driver's error, whose message may go on for lines
    (PostgreSQL's `LINE 7: ...` and a caret under it): its first line says what
    happened. deadletter's own message, on top, is shown whole."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _cause(exc: BaseException) -> BaseException | None:
    """What `exc` was raised from, or during: none for `raise ... from None`, as Python
    itself shows it."""
    if exc.__cause__ is not None or exc.__suppress_context__:
        return exc.__cause__
    return exc.__context__
