"""What the command line looks like on an ordinary terminal: 80 columns, ids whole,
flags without a type, and a version."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from deadletter.app import App
from deadletter.cli import app as cli_app
from tests.cli.conftest import Cli, command_env
from tests.cli.test_cli_reads import fail_one_of_each_class

NARROW = {"COLUMNS": "80"}


def fits(screen: str) -> bool:
    return all(len(line) <= 80 for line in screen.splitlines())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_review_and_token_list_fit_80_columns_with_ids_whole(cli: Cli, dlq_app: App) -> None:
    fail_one_of_each_class(dlq_app)
    [entry] = cli.json("review")["review"]
    screen = cli.ok("review", env=NARROW)
    assert fits(screen) and entry["dead_letter_id"] in screen, screen

    for name in ("grafana", "a-token-with-a-name-longer-than-its-id"):
        cli.ok("token", "create", name, "--scope", "read")
    screen = cli.ok("token", "list", env=NARROW)
    assert fits(screen), screen
    listed = cli.json("token", "list")["tokens"]
    assert all(token["id"] in screen for token in listed)
    # The id as shown is the id `revoke` takes.
    shown = re.search(r"│ ([0-9a-f]{16}) ", screen)
    assert shown is not None
    cli.ok("token", "revoke", shown.group(1))


def test_flags_show_no_type_in_help() -> None:
    # In this process: help is the same text either way, and a process per command
    # would cost the suite its start-up (0.6 s) some 35 times.
    runner = CliRunner()
    names = ["", *typer.main.get_command(cli_app).commands]  # type: ignore[attr-defined]
    for name in names:
        done = runner.invoke(cli_app, [*name.split(), "--help"], env=NARROW)
        assert done.exit_code == 0, f"{name}: {done.output}"
        assert "<bool>" not in done.output, name
        assert fits(done.output), name


def test_version(tmp_path: Path) -> None:
    cli = Cli(tmp_path, command_env())
    assert cli.ok("--version") == f"deadletter {importlib.metadata.version('deadletter')}\n"
