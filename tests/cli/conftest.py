"""The `deadletter` command run as an operator runs it: a subprocess in a folder whose
deadletter.toml points at the test's database, on every backend, over failures a real
worker produced (`dlq_app`, from the contract tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.terminal import Terminal
from tests.contract.conftest import dlq_app, downstream, store_url
from tests.support.operator import OTHER_Q, Q

# Fixtures shared with the contract tests, found by pytest through these names.
__all__ = ["dlq_app", "downstream", "store_url"]

COMMAND = [sys.executable, "-c", "from deadletter.cli import main; main()"]
USER = "tester"

# What tests.support.operator.make_app sets, so that the command and the test's worker
# share the database, the blobs, the DLQ log and the queues' retry policy.
CONFIG = """
database_url = "{url}"
blob_url = "{folder}/blobs"

[dlq]
log_file = "{folder}/dlq.log"

[queues.{q}]
max_retries = 1
backoff_base = 0.0

[queues.{other_q}]
max_retries = 1
backoff_base = 0.0
"""


@dataclass
class Cli:
    """Runs `deadletter ...` in `cwd` as the user `tester`."""

    cwd: Path
    env: dict[str, str]

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        """The output of a run that must succeed."""
        done = self.run(*args, env=env)
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", env=env))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*COMMAND, *args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def terminal(self, *args: str) -> Terminal:
        return Terminal([*COMMAND, *args], cwd=self.cwd, env=self.env)


def command_env() -> dict[str, str]:
    """This environment without DEADLETTER_* settings, as the user `tester`, and wide
    enough that tables do not cut what a test looks for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEADLETTER_")}
    return {**env, "USER": USER, "LOGNAME": USER, "COLUMNS": "200"}


@pytest.fixture
def cli(store_url: str, tmp_path: Path) -> Cli:
    config = CONFIG.format(url=store_url, folder=tmp_path, q=Q, other_q=OTHER_Q)
    (tmp_path / "deadletter.toml").write_text(config)
    return Cli(tmp_path, command_env())


@pytest.fixture(params=["sqlite", "postgres"])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each backend with no tables yet, for `deploy`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new' / 'deadletter.db'}"
    else:
        yield request.getfixturevalue("empty_postgres_url")
