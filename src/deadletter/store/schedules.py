"""Periodic jobs: each schedule's last tick, in SQL both backends share.

Written once with `?` placeholders, like fleet.py. A schedule's row holds the last tick
(epoch seconds) that a scheduler dealt with, enqueued or skipped (deadletter/schedules.py).
`advance_schedule`, on each backend, moves it with a compare-and-set (`ADVANCE`) and
inserts the tick's job in the same transaction, so however many schedulers run, one
wins each tick and a crash between the two leaves neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from deadletter.store.failures import Execute

START = "INSERT INTO schedules (name, last_tick) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
ADVANCE = "UPDATE schedules SET last_tick = ? WHERE name = ? AND last_tick = ?"
TICKS = "SELECT name, last_tick FROM schedules"


class ScheduleMixin:
    """Reading and starting schedules, the same on both backends (see base.Store)."""

    def transaction(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[Execute]:
        raise NotImplementedError

    def schedule_ticks(self, names: Sequence[str]) -> dict[str, int]:
        wanted = set(names)
        with self.snapshot() as execute:
            found = execute(TICKS, ()).fetchall()
        return {row[0]: int(row[1]) for row in found if row[0] in wanted}

    def start_schedule(self, name: str, *, at: int) -> int:
        with self.transaction() as execute:
            execute(START, (name, at))
            row = execute(f"{TICKS} WHERE name = ?", (name,)).fetchone()
        return int(row[1])
