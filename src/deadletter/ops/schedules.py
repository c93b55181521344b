"""Periodic jobs as operators see them: each schedule, its last tick and its next run
(issue 12). The schedules themselves are the app's and the config's (App.schedules)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from deadletter.schedules import Schedule, iso
from deadletter.store.base import Store


@dataclass(frozen=True, slots=True)
class ScheduleView:
    schedule: Schedule
    last_tick: int | None  # None: no scheduler has started it yet
    next_run: int
    missed: bool  # ticks past their grace wait for the next scheduler ("once" runs one)


def schedule_views(
    store: Store, schedules: Sequence[Schedule], *, now: float
) -> list[ScheduleView]:
    """Each schedule with its next run: the first tick a scheduler would enqueue at or
    after `now`, as Schedule.plan decides it."""
    lasts = store.schedule_ticks([schedule.name for schedule in schedules])
    return [_view(schedule, lasts.get(schedule.name), now) for schedule in schedules]


def _view(schedule: Schedule, last: int | None, now: float) -> ScheduleView:
    if last is None:
        return ScheduleView(schedule, None, schedule.next_tick(now), missed=False)
    plan = schedule.plan(last, now)
    catch_up = plan.missed if schedule.missed == "once" else None
    due = [tick for tick in (catch_up, *plan.on_time) if tick is not None]
    next_run = due[0] if due else schedule.next_tick(max(float(last), math.floor(now)))
    return ScheduleView(schedule, last, next_run, missed=plan.missed is not None)


def schedule_json(view: ScheduleView) -> dict[str, object]:
    schedule = view.schedule
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "task": schedule.task,
        "queue": schedule.queue or None,
        "args": list(schedule.args),
        "kwargs": dict(schedule.kwargs),
        "missed_policy": schedule.missed,
        "grace_seconds": schedule.grace_seconds,
        "last_tick": iso(view.last_tick) if view.last_tick is not None else None,
        "next_run": iso(view.next_run),
        "next_run_epoch": view.next_run,
        "missed": view.missed,
    }
