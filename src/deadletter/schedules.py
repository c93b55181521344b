"""Periodic jobs: cron schedules, their ticks, and the scheduler every worker runs.

A schedule's ticks come from its cron expression (croniter: five fields, or six with
seconds last) in its time zone. Its last tick dealt with lives in the store
(store/schedules.py); a scheduler enqueues each tick after it in the transaction that
moves the last tick on, a compare-and-set, so a tick is enqueued once however many
workers run the scheduler. The job's idempotency key, `schedule:<name>:<tick in UTC>`,
holds against anything else that would enqueue the same tick.

A tick is on time while it is at most `grace_seconds` old. Older ones were missed
(every scheduler was down): `missed = "skip"` drops them, `"once"` runs the latest of
them once. Across a change of clock: a wall time that does not exist (spring) runs at
the first time after it; a wall time that comes twice (autumn) runs twice only for a
schedule whose hour field is `*` or a step of it (it runs by the clock's hours), once
for one at fixed hours, as cron does.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from deadletter.errors import ConfigError
from deadletter.model import NewJob
from deadletter.store.base import Store
from deadletter.tasks import JobSpec

log = logging.getLogger(__name__)

MISSED_POLICIES = ("skip", "once")
DEFAULT_GRACE = 60.0
# How often a worker's scheduler looks for due ticks, in seconds.
INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """`task` with `args` and `kwargs`, enqueued on `queue` at each tick of `cron`.
    An empty `queue` is the task's own, known where the task is registered."""

    name: str
    cron: str
    task: str
    queue: str = ""
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    missed: str = "skip"
    grace_seconds: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        where = f"schedule {self.name!r}"
        if not self.name:
            raise ConfigError("a schedule needs a name")
        if not croniter.is_valid(self.cron):
            raise ConfigError(f"{where}: {self.cron!r} is not a cron expression")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{where}: unknown time zone {self.timezone!r}") from exc
        if self.missed not in MISSED_POLICIES:
            raise ConfigError(f"{where}: missed must be 'skip' or 'once', not {self.missed!r}")
        if not (0 <= self.grace_seconds < math.inf):
            raise ConfigError(f"{where}: grace_seconds must be 0 or more")
        try:
            json.dumps({"args": list(self.args), "kwargs": dict(self.kwargs)})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: args and kwargs must be JSON values ({exc})") from exc

    def ticks(self, after: float, until: float) -> Iterator[int]:
        """The ticks later than `after` and not later than `until`, oldest first."""
        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, datetime.fromtimestamp(after, zone))
        hourly = _by_the_hour(it)
        while True:
            moment = it.get_next(datetime)
            tick = int(moment.timestamp())
            if tick > until:
                return
            if hourly or not _repeat(moment):
                yield tick

    def latest(self, until: float, *, after: float) -> int | None:
        """The last tick not later than `until`, if it is later than `after`."""
        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, datetime.fromtimestamp(math.floor(until) + 1, zone))
        hourly = _by_the_hour(it)
        while True:
            moment = it.get_prev(datetime)
            tick = int(moment.timestamp())
            if tick <= after:
                return None
            if tick <= until and (hourly or not _repeat(moment)):
                return tick

    def next_tick(self, after: float) -> int:
        """The first tick later than `after`."""
        return next(self.ticks(after, math.inf))

    def plan(self, last: int, now: float) -> Plan:
        """What is due at `now` after the last tick dealt with, `last`."""
        on_time_from = max(last, math.floor(now - self.grace_seconds))
        missed = self.latest(on_time_from, after=last) if on_time_from > last else None
        return Plan(missed=missed, on_time=list(self.ticks(on_time_from, now)))

    def spec(self, tick: int) -> JobSpec:
        moment = iso(tick)
        return JobSpec(
            task=self.task,
            queue=self.queue,
            args=self.args,
            kwargs=dict(self.kwargs),
            run_at=float(tick),
            labels={"schedule": self.name, "tick": moment},
            idempotency_key=f"schedule:{self.name}:{moment}",
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """`missed`: the latest tick past its grace (None: none missed); `on_time`: the
    ticks to enqueue, oldest first."""

    missed: int | None
    on_time: list[int]


def _by_the_hour(it: croniter) -> bool:
    """Whether the hour field (aliases such as `@hourly` expanded) is `*` or a step of it."""
    return str(it.expressions[1]).startswith("*")


def _repeat(moment: datetime) -> bool:
    """Whether `moment` is the second pass of a wall time the clock went back over."""
    first = moment.replace(tzinfo=None).replace(tzinfo=moment.tzinfo, fold=0)
    return first.timestamp() != moment.timestamp()


def iso(tick: int) -> str:
    return datetime.fromtimestamp(tick, UTC).isoformat()


def schedules_from_config(tables: Mapping[str, Mapping[str, Any]]) -> list[Schedule]:
    """`[schedules.<name>]` tables of the config file as schedules."""
    known = set(Schedule.__dataclass_fields__) - {"name"}
    found = []
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[schedules.{name}] must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"[schedules.{name}]: unknown key {unknown[0]!r}; known keys:"
                f" {', '.join(sorted(known))}"
            )
        missing = [key for key in ("cron", "task") if key not in table]
        if missing:
            raise ConfigError(f"[schedules.{name}] needs {' and '.join(missing)}")
        values = dict(table)
        values["args"] = tuple(values.get("args", ()))
        try:
            found.append(Schedule(name=name, **values))
        except TypeError as exc:
            raise ConfigError(f"[schedules.{name}]: {exc}") from exc
    return found


@dataclass
class Scheduler:
    """Enqueues the due ticks of `schedules` each time it is called (a worker's periodic
    duty). `build` turns a tick's job into the row to insert (App.new_job: the queue's
    retries and dead-letter queue)."""

    store: Store
    schedules: Sequence[Schedule]
    build: Callable[[JobSpec], NewJob]
    clock: Callable[[], float] = time.time

    def __call__(self) -> int:
        return self.run_due(self.clock())

    def run_due(self, now: float) -> int:
        """Enqueue what is due at `now`; how many ticks this scheduler enqueued."""
        names = [schedule.name for schedule in self.schedules]
        lasts = self.store.schedule_ticks(names)
        enqueued = 0
        for schedule in self.schedules:
            last = lasts.get(schedule.name)
            if last is None:
                # A new schedule starts now: its first tick is the next one.
                last = self.store.start_schedule(schedule.name, at=math.floor(now))
            enqueued += self._run(schedule, last, now)
        return enqueued

    def _run(self, schedule: Schedule, last: int, now: float) -> int:
        """Deal with the due ticks in order, each with its own compare-and-set; stop at
        the first lost one: another scheduler is on this schedule."""
        plan = schedule.plan(last, now)
        steps: list[tuple[int, bool]] = []
        if plan.missed is not None:
            log.warning(
                "schedule %s missed its ticks from %s to %s: %s",
                schedule.name,
                iso(schedule.next_tick(last)),
                iso(plan.missed),
                "running the latest once" if schedule.missed == "once" else "skipped",
            )
            steps.append((plan.missed, schedule.missed == "once"))
        steps.extend((tick, True) for tick in plan.on_time)
        enqueued = 0
        for tick, run in steps:
            job = self.build(schedule.spec(tick)) if run else None
            if not self.store.advance_schedule(schedule.name, after=last, to=tick, job=job):
                break
            last = tick
            enqueued += run
        return enqueued
