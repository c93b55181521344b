"""Ticks of a schedule (deadletter/schedules.py): cron in a time zone, across changes of
the clock, and what is due after downtime under each missed-tick policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deadletter.app import App
from deadletter.config import load_settings
from deadletter.errors import ConfigError
from deadletter.schedules import Schedule, schedules_from_config

BERLIN = ZoneInfo("Europe/Berlin")


def at(year: int, month: int, day: int, hour: int, minute: int, zone: Any = UTC) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp())


def local(ticks: list[int], zone: Any = BERLIN) -> list[str]:
    return [datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M %Z") for t in ticks]


def test_ticks_follow_the_cron_in_the_schedule_time_zone() -> None:
    nine = Schedule("report", "0 9 * * 1-5", "reports.daily", timezone="America/New_York")
    start = at(2026, 6, 5, 0, 0)  # a Friday
    ticks = list(nine.ticks(start, start + 4 * 86400))
    # 09:00 in New York is 13:00 UTC in summer; the weekend has none.
    assert [datetime.fromtimestamp(t, UTC).strftime("%a %H:%M") for t in ticks] == [
        "Fri 13:00",
        "Mon 13:00",
    ]


def test_six_fields_tick_every_second() -> None:
    every = Schedule("s", "* * * * * *", "t")
    start = at(2026, 1, 1, 0, 0)
    assert list(every.ticks(start, start + 3)) == [start + 1, start + 2, start + 3]


def test_spring_forward_runs_a_missing_wall_time_at_the_first_time_after_it() -> None:
    daily = Schedule("d", "30 2 * * *", "t", timezone="Europe/Berlin")
    ticks = list(daily.ticks(at(2026, 3, 28, 12, 0), at(2026, 3, 30, 12, 0)))
    assert local(ticks) == ["03-29 03:00 CEST", "03-30 02:30 CEST"]


def test_fall_back_runs_a_fixed_time_once_and_an_hourly_schedule_every_hour() -> None:
    start, end = at(2026, 10, 24, 12, 0), at(2026, 10, 25, 12, 0)
    daily = Schedule("d", "30 2 * * *", "t", timezone="Europe/Berlin")
    assert local(list(daily.ticks(start, end))) == ["10-25 02:30 CEST"]
    hourly = Schedule("h", "0 * * * *", "t", timezone="Europe/Berlin")
    around = [t for t in hourly.ticks(start, end) if at(2026, 10, 24, 23, 0) <= t]
    # 02:00 comes twice, an hour apart: an hourly schedule runs by the clock's hours.
    assert local(around[:5]) == [
        "10-25 01:00 CEST",
        "10-25 02:00 CEST",
        "10-25 02:00 CET",
        "10-25 03:00 CET",
        "10-25 04:00 CET",
    ]
    assert daily.latest(end, after=start) == at(2026, 10, 25, 2, 30, zone=BERLIN)
    # Aliases are read as the fields they stand for.
    alias = Schedule("a", "@hourly", "t", timezone="Europe/Berlin")
    assert list(alias.ticks(start, end)) == list(hourly.ticks(start, end))
    midnight = Schedule("m", "@daily", "t", timezone="Europe/Berlin")
    assert local(list(midnight.ticks(start, end))) == ["10-25 00:00 CEST"]


def test_after_downtime_skip_drops_missed_ticks_and_once_runs_the_latest_of_them() -> None:
    minute = at(2026, 5, 1, 10, 0)
    skip = Schedule("s", "* * * * *", "t", grace_seconds=90)
    now = minute + 10 * 60 + 5  # ten minutes down, 10:10:05
    plan = skip.plan(minute, now)
    # On time: 10:09 and 10:10 (within 90 s); missed: 10:01 to 10:08, latest 10:08.
    assert plan.on_time == [minute + 9 * 60, minute + 10 * 60]
    assert plan.missed == minute + 8 * 60
    once = Schedule("o", "* * * * *", "t", grace_seconds=90, missed="once")
    assert once.plan(minute, now) == plan  # the same ticks; the scheduler runs `missed`


def test_nothing_is_missed_while_the_scheduler_keeps_up() -> None:
    every = Schedule("s", "* * * * * *", "t", grace_seconds=5)
    start = at(2026, 5, 1, 10, 0)
    plan = every.plan(start, start + 1.5)
    assert (plan.missed, plan.on_time) == (None, [start + 1])
    assert every.plan(start + 1, start + 1.9).on_time == []


def test_a_tick_job_carries_the_tick_in_its_idempotency_key_and_labels() -> None:
    spec = Schedule("nightly", "0 3 * * *", "reports.build", queue="q", args=(1,)).spec(
        at(2026, 5, 1, 3, 0)
    )
    assert spec.idempotency_key == "schedule:nightly:2026-05-01T03:00:00+00:00"
    assert spec.labels == {"schedule": "nightly", "tick": "2026-05-01T03:00:00+00:00"}
    assert (spec.task, spec.queue, spec.args, spec.run_at) == (
        "reports.build",
        "q",
        (1,),
        float(at(2026, 5, 1, 3, 0)),
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cron": "61 * * * *", "task": "t"}, "is not a cron expression"),
        ({"cron": "* * * * *", "task": "t", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"cron": "* * * * *", "task": "t", "missed": "all"}, "missed must be"),
        ({"cron": "* * * * *", "task": "t", "grace_seconds": -1}, "grace_seconds"),
        ({"cron": "* * * * *"}, "needs task"),
        ({"cron": "* * * * *", "task": "t", "every": 5}, "unknown key 'every'"),
    ],
)
def test_a_bad_schedule_is_refused_naming_it(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        schedules_from_config({"nightly": values})
    assert "nightly" in str(raised.value)


def test_config_and_decorator_schedules_meet_in_the_app(tmp_path: Path) -> None:
    (tmp_path / "deadletter.toml").write_text(
        '[schedules.cleanup]\ncron = "0 4 * * *"\ntask = "jobs.clean"\n'
        'timezone = "Europe/Berlin"\nmissed = "once"\nargs = [7]\nkwargs = {dry = false}\n'
    )
    app = App(load_settings(environ={}, cwd=tmp_path))

    @app.periodic("*/5 * * * *")
    @app.task(name="jobs.ping", queue="pings")
    def ping() -> None: ...

    app.task(name="jobs.clean", queue="maintenance")(lambda days, dry: None)
    found = {s.name: s for s in app.schedules()}
    assert found["jobs.ping"].queue == "pings"
    clean = found["cleanup"]
    assert (clean.queue, clean.args, clean.kwargs, clean.missed) == (
        "maintenance",
        (7,),
        {"dry": False},
        "once",
    )
    with pytest.raises(ConfigError, match="registered twice"):
        app.periodic("* * * * *")(ping)
