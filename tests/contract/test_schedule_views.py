"""What `deadletter schedules` shows of a schedule a scheduler has started, on every
backend: its last tick, its next run, and whether ticks were missed (ops/schedules.py)."""

from __future__ import annotations

from pathlib import Path

from deadletter.ops.schedules import schedule_json, schedule_views
from deadletter.schedules import Schedule
from tests.contract.test_schedules import T0, make

SKIP = Schedule("skip", "* * * * *", "clock.tick", queue="clock")
ONCE = Schedule("once", "* * * * *", "clock.tick", queue="clock", missed="once")


def test_a_started_schedule_shows_its_next_run_and_its_missed_ticks(
    store_url: str, tmp_path: Path
) -> None:
    app, scheduler = make(store_url, tmp_path, SKIP, ONCE)
    try:
        assert scheduler.run_due(T0) == 0  # starts both: T0 is their last tick

        def shown(now: float) -> list[tuple[str, int | None, int, bool]]:
            views = schedule_views(app.store, [SKIP, ONCE], now=now)
            return [(v.schedule.name, v.last_tick, v.next_run, v.missed) for v in views]

        # Nothing due yet: the next tick after now.
        assert shown(T0 + 30) == [("skip", T0, T0 + 60, False), ("once", T0, T0 + 60, False)]
        # A tick due within its grace (60 s) is the next run.
        assert shown(T0 + 90) == [("skip", T0, T0 + 60, False), ("once", T0, T0 + 60, False)]
        # T0+60 and T0+120 are past their grace: "skip" runs the next on time, "once"
        # runs the latest missed one first.
        assert shown(T0 + 200) == [("skip", T0, T0 + 180, True), ("once", T0, T0 + 120, True)]
        [listed, _] = schedule_views(app.store, [SKIP, ONCE], now=T0 + 200)
        assert schedule_json(listed)["last_tick"] is not None
        assert schedule_json(listed)["missed"] is True
    finally:
        app.close()
