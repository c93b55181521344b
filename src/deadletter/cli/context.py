"""What every command shares: settings, the app, output helpers and exit codes."""

from __future__ import annotations

import getpass
import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from deadletter.app import App
from deadletter.config import Settings, load_settings
from deadletter.errors import ConfigError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FIRED = 3
EXIT_INTERRUPTED = 130

console = Console()
errors = Console(stderr=True)


@dataclass
class CliContext:
    settings: Settings


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
) -> None:
    ctx.obj = CliContext(load_settings(config))


def settings(ctx: typer.Context) -> Settings:
    obj: CliContext = ctx.ensure_object(CliContext)
    return obj.settings


@contextmanager
def open_app(ctx: typer.Context) -> Iterator[App]:
    """The app of the settings, closed after the command: operator commands need its
    store, queue policies and blob store, not the user's tasks."""
    app = App(settings(ctx))
    try:
        yield app
    finally:
        app.close()


def actor() -> str:
    """Who the audit log says acted. The CLI holds the database's credentials, so it acts
    with full rights; API token scopes govern remote access only."""
    return f"cli:{getpass.getuser()}"


def load_app(spec: str, settings: Settings) -> App:
    """`module:attribute`, where the attribute is an App or a function of Settings -> App."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--app {spec!r} must look like 'package.module:app'")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load app {spec!r}: {exc}") from exc
    if isinstance(target, App):
        return target
    if callable(target):
        built = target(settings)
        if isinstance(built, App):
            return built
    raise ConfigError(f"{spec!r} is neither a deadletter.App nor a function returning one")


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def print_error(exc: BaseException) -> None:
    """The error and the chain of causes under it, one line each."""
    errors.print(f"[bold red]error:[/] {exc}", highlight=False)
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        errors.print(f"  caused by {type(cause).__name__}: {cause}", highlight=False)
        cause = cause.__cause__ or cause.__context__
