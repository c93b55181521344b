"""What a newcomer meets first: their own app loading from the folder they are in, an
import error told in one line, and an environment shared with everything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer.main

from deadletter.cli import app as cli_app
from tests.cli.conftest import Cli, command_env

MYJOBS = """
from deadletter import App

app = App()


@app.task(queue="hello")
def greet(name: str) -> str:
    return f"hello {name}"
"""


@pytest.fixture
def local(tmp_path: Path) -> Cli:
    """A folder of its own with a SQLite database in it, as a newcomer's project is."""
    database = tmp_path / "data" / "deadletter.db"
    (tmp_path / "deadletter.toml").write_text(
        f'database_url = "sqlite:///{database}"\nblob_url = "{tmp_path / "blobs"}"\n'
        f'[dlq]\nlog_file = "{tmp_path / "dlq.log"}"\n'
    )
    return Cli(tmp_path, command_env())


def test_the_worker_finds_an_app_beside_it(local: Cli) -> None:
    (local.cwd / "myjobs.py").write_text(MYJOBS)
    done = local.run("worker", "--app", "myjobs:app", "--burst")
    assert done.returncode == 0, done.stderr
    assert "consuming hello" in done.stdout


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (None, "no module named 'myjobs' in"),
        ("import not_installed_anywhere\n", "'myjobs' imports 'not_installed_anywhere'"),
        ("def broken(:\n", "'myjobs' has a syntax error"),
        ("raise RuntimeError('no API key')\n", "raised RuntimeError: no API key"),
        ("x = 1\n", "module 'myjobs' has no 'app'"),
    ],
)
def test_an_app_that_will_not_import_is_one_line(local: Cli, source: str | None, said: str) -> None:
    if source is not None:
        (local.cwd / "myjobs.py").write_text(source)
    done = local.run("worker", "--app", "myjobs:app", "--burst")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--app 'myjobs:app'" in lines[0], done.stderr
    assert said in lines[0]


def option_variables(command: Any) -> set[str]:
    """The environment variables the options of `command` and its subcommands read."""
    names = {p.envvar for p in command.params if isinstance(p.envvar, str)}
    for sub in getattr(command, "commands", {}).values():
        names |= option_variables(sub)
    return names


def test_every_variable_an_option_declares_loads_cleanly(local: Cli) -> None:
    declared = option_variables(typer.main.get_command(cli_app))
    assert {"DEADLETTER_APP", "DEADLETTER_CONFIG"} <= declared
    values = {name: "myjobs:app" for name in declared}
    values["DEADLETTER_CONFIG"] = str(local.cwd / "deadletter.toml")
    local.ok("migrate")
    done = local.run("stats", env=values)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_unknown_variables_get_one_warning_and_change_nothing(local: Cli) -> None:
    stray = {
        "DEADLETTER_GIT_SHA": "abc123",
        "DEADLETTER_SERVICE_HOST": "10.0.0.7",
        "DEADLETTER_PORT_8787_TCP": "tcp://10.0.0.7:8787",
    }
    local.ok("migrate")
    done = local.run("stats", "--json", env=stray)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and all(name in lines[0] for name in stray)
    assert json.loads(done.stdout)["dlq"]["total_failed"] == 0


def test_a_new_database_is_announced_once(local: Cli) -> None:
    first = local.run("stats")
    assert first.returncode == 0
    assert "created a new SQLite database at" in first.stderr
    assert local.run("stats").stderr == ""


@pytest.mark.parametrize(
    ("where", "problem"),
    [("folder", "is a folder"), ("file/deeper/x.db", "cannot create folder")],
)
def test_a_sqlite_path_mistake_is_one_line(local: Cli, where: str, problem: str) -> None:
    (local.cwd / "folder").mkdir()
    (local.cwd / "file").write_text("in the way")
    url = {"DEADLETTER_DATABASE_URL": f"sqlite:///{local.cwd / where}"}
    done = local.run("stats", env=url)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and str(local.cwd) in lines[0], done.stderr


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("127.0.0.1:1/test", "Connection refused"),
        ("127.0.0.1:5432/no_such_database", 'database "no_such_database" does not exist'),
    ],
)
@pytest.mark.parametrize("command", ["stats", "jobs", "migrate"])
def test_a_wrong_postgresql_url_fails_on_the_first_try_in_one_line(
    local: Cli, postgres_server: str, command: str, where: str, reason: str
) -> None:
    url = {"DEADLETTER_DATABASE_URL": f"postgresql://postgres@{where}"}
    done = local.run(command, env=url)
    assert done.returncode == 1
    # One line: no pool trying again, no driver lines repeated.
    assert done.stderr == f"error: cannot connect to PostgreSQL at {where}: {reason}\n"


def test_a_postgresql_database_without_the_schema_says_what_to_run(
    local: Cli, empty_postgres_url: str
) -> None:
    done = local.run("stats", env={"DEADLETTER_DATABASE_URL": empty_postgres_url})
    assert done.returncode == 1
    error, cause = done.stderr.splitlines()  # the driver's LINE and caret left out
    assert "has no deadletter schema" in error and "Run `deadletter migrate`" in error
    assert cause.startswith("  caused by UndefinedTable: relation")


def test_an_app_building_its_own_settings_under_the_worker_says_nothing(local: Cli) -> None:
    # `App()` in the user's module reads the environment too, DEADLETTER_APP included.
    (local.cwd / "myjobs.py").write_text(MYJOBS)
    local.ok("migrate")
    done = local.run("worker", "--burst", env={"DEADLETTER_APP": "myjobs:app"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
