"""Celery's edges: a result backend that is not Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery

from deadletter.app import App
from deadletter.errors import InvalidRequest
from deadletter.integrations.celery import held_failures


def test_import_from_a_backend_that_is_not_redis_is_an_operator_error(dl_app: App) -> None:
    with pytest.raises(InvalidRequest, match="use Redis"):
        list(held_failures(Celery("dltest-cache", backend="cache+memory://")))
    command = [str(Path(sys.executable).with_name("deadletter")), "import", "celery"]
    done = subprocess.run(
        [*command, "--backend", "cache+memory://"],
        env={**os.environ, "DEADLETTER_DATABASE_URL": dl_app.settings.database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "use Redis" in done.stderr and "Traceback" not in done.stderr
