"""`deadletter serve`: the HTTP API on uvicorn, locked by default.

Auth is on even on localhost. When the database has never had a token, `serve` creates
an admin token and prints it once with the API's address, as Jupyter prints its login
link: a newcomer is neither locked out nor left open. Once tokens exist, revoking them
all does not bring that back: `deadletter token create` makes the next one.
`--no-auth` is the one way to turn auth off, on a loopback address only, and says so
loudly at every start.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from dataclasses import replace
from typing import Annotated

import typer

from deadletter.cli import logformat
from deadletter.cli.context import EXIT_USAGE, errors, open_app, settings
from deadletter.config import ServeSettings
from deadletter.errors import ConfigError
from deadletter.ops.tokens import ensure_admin_token
from deadletter.store.base import Store

log = logging.getLogger("deadletter.api")


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (`host` under serve in deadletter.toml,"
            " DEADLETTER_SERVE_HOST; default 127.0.0.1, this machine only).",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port (DEADLETTER_SERVE_PORT; default 8787)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without tokens: anyone who can reach the port acts as an admin.",
        ),
    ] = False,
    log_format: logformat.LogFormat = None,
) -> None:
    """Serve the HTTP API (docs at /docs) and the web dashboard (at /) until interrupted."""
    # Imported here: FastAPI, uvicorn and the blob store's boto3 would otherwise slow
    # every other command's start by most of a second.
    import uvicorn

    from deadletter.api.edges import is_loopback
    from deadletter.web import create_server

    chosen = _chosen(settings(ctx).serve, host, port)
    if no_auth and not is_loopback(chosen.host):
        errors.print(
            f"--no-auth serves on this machine's loopback only, not on {chosen.host}:"
            " anyone who reached it would act as an admin. Serve with tokens, or on 127.0.0.1",
            markup=False,
        )
        raise typer.Exit(EXIT_USAGE)
    chosen_format = logformat.checked(log_format or settings(ctx).log_format)
    if chosen_format == "json":
        # uvicorn's own lines (requests, start, stop) reach the root's JSON handler.
        logformat.configure(chosen_format)
    else:
        logformat.configure(chosen_format, loggers=("deadletter",))
    # Bound before anything is announced: a start that fails on a taken port says so,
    # and prints and mints nothing.
    listener = _bind(chosen)
    with listener, open_app(ctx, fail_fast=False) as app:
        api = create_server(app, auth=not no_auth)
        url = base_url(chosen)
        if no_auth:
            _warn_open(url)
        else:
            _announce(app.store, url)
        if not is_loopback(chosen.host):
            _warn_beyond(url, chosen.allowed_hosts)
        # With JSON, uvicorn keeps its hands off logging: its loggers go to the root's.
        log_config = None if chosen_format == "json" else uvicorn.config.LOGGING_CONFIG
        config = uvicorn.Config(api, log_level="info", log_config=log_config)
        uvicorn.Server(config).run(sockets=[listener])


def _bind(chosen: ServeSettings) -> socket.socket:
    """A socket bound to the chosen address (as uvicorn binds one), or a ConfigError."""
    family = socket.AF_INET6 if ":" in chosen.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((chosen.host, chosen.port))
    except OSError as exc:
        listener.close()
        advice = (
            ": another program (another `deadletter serve`?) listens there; choose a port"
            " with --port or [serve] port"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise ConfigError(f"cannot listen on {base_url(chosen)}: {exc.strerror}{advice}") from None
    return listener


def _chosen(configured: ServeSettings, host: str | None, port: int | None) -> ServeSettings:
    """The [serve] settings with the command line's choices over them."""
    return replace(
        configured,
        host=configured.host if host is None else host,
        port=configured.port if port is None else port,
    )


def base_url(serve: ServeSettings) -> str:
    host = f"[{serve.host}]" if ":" in serve.host else serve.host
    return f"http://{host}:{serve.port}"


def _announce(store: Store, url: str) -> None:
    """Print the bootstrap token once, if this start created it (the database has never
    had a token); else how to make one."""
    created = ensure_admin_token(store, now=time.time())
    if created is None:
        typer.echo(
            f"deadletter API at {url} (docs: {url}/docs, dashboard: {url}/); send a token as"
            " 'Authorization: Bearer …'. To make one on this machine:"
            " `deadletter token create NAME --scope read|operate|admin`"
        )
        return
    _, secret = created
    # typer.echo, not Rich: the token must not be wrapped or styled, and it is flushed
    # at once for whoever reads this output through a pipe.
    typer.echo(
        f"deadletter API at {url} (docs: {url}/docs, dashboard: {url}/)\n"
        "No API token existed, so this admin token was created. It is shown this once:\n\n"
        f"    {secret}\n\n"
        f"    curl -H 'Authorization: Bearer {secret}' {url}/api/queue/dlq/stats\n\n"
        f"Log in to the dashboard at {url}/ with it too.\n"
        "Keep it secret. `deadletter token create NAME --scope read` makes narrower"
        " tokens; `deadletter token revoke` ends this one."
    )


def _warn_open(url: str) -> None:
    log.warning(
        "AUTH IS OFF (--no-auth): anyone who can reach %s can read every failure,"
        " requeue, abandon and export them with their payloads. Use it on a machine"
        " of your own only.",
        url,
    )


def _warn_beyond(url: str, allowed_hosts: tuple[str, ...]) -> None:
    log.warning("listening beyond this machine on %s: put TLS in front of it", url)
    if not allowed_hosts:
        log.warning(
            "no allowed_hosts under [serve]: requests that name this machine other than"
            " as localhost or 127.0.0.1 in their Host header are refused (421)"
        )
