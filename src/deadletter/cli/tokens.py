"""`deadletter token create|list|revoke`: the API's bearer tokens.

A token's secret is printed once, when it is created; the database keeps its hash.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from deadletter.cli.context import EXIT_ERROR, actor, console, errors, open_app, print_json
from deadletter.cli.params import Json
from deadletter.cli.views import add_row, id_column, stacked, when
from deadletter.ops import tokens
from deadletter.ops.tokens import Scope, Token

Reason = Annotated[str, typer.Option(help="Why, for the audit log.")]

token_app = typer.Typer(
    help="API tokens for `deadletter serve`, each with a scope: read (stats, lists and"
    " details, PII redacted), operate (also requeue, abandon, bulk, review) or admin (also"
    " export with payloads, token management).",
    no_args_is_help=True,
)


def token_json(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": sorted(token.scopes, key=lambda scope: scope.rank),
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def tokens_table(found: list[Token]) -> Table:
    """Two lines a row, so that 80 columns hold it with the ids whole: `token revoke`
    takes the id as shown."""
    table = Table(title="API tokens")
    id_column(table, "id / name", [token.id for token in found])
    for name in ("scope / prefix", "created / last used", "revoked"):
        table.add_column(name)
    for token in found:
        scope = max(token.scopes, key=lambda s: s.rank).value
        add_row(
            table,
            stacked(token.id, token.name),
            stacked(scope, token.prefix),
            stacked(when(token.created_at), when(token.last_used_at) or "never"),
            when(token.revoked_at),
        )
    return table


@token_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what will use it, e.g. grafana.")],
    scope: Annotated[Scope, typer.Option(help="What it may do.")] = Scope.READ,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Create a token and print its secret, this once (recorded in the audit log)."""
    with open_app(ctx) as app:
        token, secret = tokens.create(
            app.store, name, [scope], now=time.time(), actor=actor(), reason=reason
        )
    if as_json:
        print_json({"token": token_json(token), "secret": secret})
        return
    console.print(tokens_table([token]))
    console.print("The token, shown this once (send it as 'Authorization: Bearer …'):")
    typer.echo(secret)  # plain: Rich could wrap or style it


@token_app.command("list")
def list_tokens(ctx: typer.Context, as_json: Json = False) -> None:
    """Every token, revoked ones included, oldest first; never their secrets."""
    with open_app(ctx) as app:
        found = tokens.list_tokens(app.store)
    if as_json:
        print_json({"tokens": [token_json(token) for token in found], "count": len(found)})
        return
    console.print(tokens_table(found))


@token_app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id or prefix.")],
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Revoke a token: it stops working at once, on every server (recorded in the audit
    log)."""
    with open_app(ctx) as app:
        revoked = tokens.revoke(app.store, token_id, now=time.time(), actor=actor(), reason=reason)
    if revoked is None:
        errors.print(f"no token {token_id}", markup=False)
        raise typer.Exit(EXIT_ERROR)
    if as_json:
        print_json({"token": token_json(revoked)})
        return
    console.print(f"revoked {revoked.name} ({revoked.id})", markup=False)
