"""`--log-format json` of a real `deadletter worker` and `deadletter serve`: every line
on stderr a JSON object, a task's own log lines with its job's id, queue, task and
attempt, secrets redacted (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deadletter.app import App
from deadletter.config import load_settings
from tests.api.test_api_serve import serving
from tests.cli.conftest import Cli
from tests.support.operator import Q

CHATTY = f"""
import logging

from deadletter import App

app = App()
log = logging.getLogger("chatty")


@app.task(name="chatty.talk", queue="{Q}")
def talk(word: str) -> None:
    log.info("saying %s with password=hunter2", word)
"""


def lines_of(text: str) -> list[dict[str, Any]]:
    """Each line as the JSON object it must be."""
    return [json.loads(line) for line in text.splitlines()]


def test_a_json_worker_logs_objects_with_the_job_and_no_secret(cli: Cli) -> None:
    (cli.cwd / "chatty.py").write_text(CHATTY)
    app = App(load_settings(cwd=cli.cwd, environ={}))
    app.task(name="chatty.talk", queue=Q)(lambda word: None)
    job_id = app.tasks["chatty.talk"].enqueue("hello")
    app.close()

    done = cli.run("worker", "--app", "chatty:app", "--burst", "--log-format", "json")

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    logged = lines_of(done.stderr)
    [said] = [line for line in logged if line["logger"] == "chatty"]
    assert said["message"] == "saying hello with password=[REDACTED]"
    assert (said["job_id"], said["queue"], said["task"], said["attempt"]) == (
        job_id,
        Q,
        "chatty.talk",
        1,
    )
    assert said["level"] == "info" and said["time"].endswith("+00:00")
    own = [line["message"] for line in logged if line["logger"] == "deadletter.worker"]
    assert own[0].startswith("worker ") and own[-1].startswith("stopped: jobs: 1 succeeded")
    assert "job_id" not in logged[0]


def test_the_log_format_setting_is_checked(cli: Cli) -> None:
    (cli.cwd / "chatty.py").write_text(CHATTY)
    done = cli.run("worker", "--app", "chatty:app", "--burst", "--log-format", "xml")
    assert done.returncode == 1 and "log_format 'xml' is not one of text, json" in done.stderr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_json_server_logs_its_requests_as_objects(store_url: str, tmp_path: Path) -> None:
    with serving(store_url, tmp_path, "--log-format", "json") as (url, process):
        httpx.get(f"{url}/healthz?password=hunter2", trust_env=False)
        process.terminate()
        _, errors = process.communicate(timeout=15)
    logged = lines_of(errors)
    requests = [line for line in logged if line["logger"] == "uvicorn.access"]
    assert any("GET /healthz?password=[REDACTED]" in line["message"] for line in requests)
    assert "hunter2" not in errors
    assert any(line["logger"] == "uvicorn.error" for line in logged)
