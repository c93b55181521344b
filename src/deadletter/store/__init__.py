"""Job stores: one contract (`base.Store`), one module per backend, chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from deadletter.errors import ConfigError
from deadletter.store.base import Store


def open_store(url: str, *, fail_fast: bool = False) -> Store:
    """`sqlite:///relative/or/absolute.db` or `postgresql://user@host:port/db`.

    With `fail_fast` (the command line's one-shot tools), a database server that cannot
    be reached is reported at once with the driver's reason; otherwise the store keeps
    trying, as a running worker must through a restart of the server."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from deadletter.store.sqlite import SqliteStore

        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    if scheme in ("postgresql", "postgres"):
        from deadletter.store.postgres import PostgresStore

        return PostgresStore(url, fail_fast=fail_fast)
    raise ConfigError(
        f"database_url {url!r} is not supported: use sqlite:///path/to/file.db"
        " or postgresql://user@host:port/dbname"
    )
