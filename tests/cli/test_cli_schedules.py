"""Periodic jobs with real `deadletter worker` processes, on every backend: two workers
both run the scheduler of an every-second schedule, and each tick is enqueued once, with
no gap; a periodic job that fails dead-letters like any other; `deadletter schedules`
lists the schedules with their next run (issue 12)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from deadletter.app import App
from deadletter.config import load_settings
from deadletter.model import JobState
from tests.cli.conftest import Cli
from tests.cli.test_cli_fleet import FAST_PRESENCE, wait_until
from tests.support.operator import Q

CLOCK = f"""
from deadletter import App

app = App()


@app.periodic("* * * * * *")
@app.task(name="clock.tick", queue="{Q}")
def tick() -> None:
    pass


@app.periodic("* * * * * *", name="boom", timezone="Europe/Berlin")
@app.task(name="clock.boom", queue="{Q}", max_retries=0)
def boom() -> None:
    raise ValueError("invalid input for the periodic job")
"""

CONFIGURED = f"""
[schedules.nightly]
cron = "30 2 * * *"
task = "reports.nightly"
queue = "{Q}"
timezone = "America/New_York"
missed = "once"
"""


@pytest.fixture
def clock(cli: Cli) -> Iterator[App]:
    with (cli.cwd / "deadletter.toml").open("a") as config:
        config.write(FAST_PRESENCE)
    (cli.cwd / "clock.py").write_text(CLOCK)
    app = App(load_settings(cwd=cli.cwd, environ={}))
    yield app
    app.close()


def stop(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()


def test_two_workers_schedule_each_tick_once_with_no_gap(cli: Cli, clock: App) -> None:
    workers = [cli.popen("worker", "--app", "clock:app") for _ in range(2)]
    try:
        wait_until(lambda: len(cli.json("workers")["workers"]) == 2, "both workers to start")
        time.sleep(5)
    finally:
        stop(workers)
    for worker in workers:
        assert worker.returncode == 0, worker.stderr
    jobs = clock.store.list_jobs(queue=Q, limit=1000)
    ticks = Counter(job.labels["tick"] for job in jobs if job.task == "clock.tick")
    assert len(ticks) >= 4 and set(ticks.values()) == {1}, ticks
    seconds = sorted(int(datetime.fromisoformat(tick).timestamp()) for tick in ticks)
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds)))
    # The failing schedule's jobs dead-lettered, and their letters were handled.
    booms = [job for job in jobs if job.task == "clock.boom"]
    assert sum(job.status == JobState.FAILED for job in booms) >= 2
    assert all(job.status != JobState.SUCCEEDED for job in booms)
    assert "ValueError" in (booms[-1].last_error or "")  # the oldest


def test_schedules_lists_each_schedule_with_its_next_run(cli: Cli, clock: App) -> None:
    with (cli.cwd / "deadletter.toml").open("a") as config:
        config.write(CONFIGURED)
    listed = {s["name"]: s for s in cli.json("schedules", "--app", "clock:app")["schedules"]}
    assert sorted(listed) == ["boom", "clock.tick", "nightly"]
    nightly = listed["nightly"]
    assert (nightly["timezone"], nightly["missed_policy"], nightly["last_tick"]) == (
        "America/New_York",
        "once",
        None,
    )
    # 02:30 in New York, a day ahead at most (03:00 on the night the clocks go forward).
    upcoming = datetime.fromisoformat(nightly["next_run"]).astimezone(ZoneInfo("America/New_York"))
    assert upcoming.strftime("%H:%M") in ("02:30", "03:00")
    assert 0 < upcoming.timestamp() - time.time() <= 86400
    assert listed["boom"]["queue"] == Q and listed["boom"]["grace_seconds"] == 60
    table = cli.ok("schedules")  # without --app: the config's only
    assert "nightly" in table and "30 2 * * *" in table and "not started" in table
    assert "clock.tick" not in table
