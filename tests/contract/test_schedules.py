"""Periodic jobs on every backend: the compare-and-set that moves a schedule's last tick
enqueues each tick once however many schedulers race for it (store/schedules.py)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from deadletter.app import App
from deadletter.config import Settings
from deadletter.model import JobState
from deadletter.schedules import Schedule, Scheduler
from deadletter.store import open_store

T0 = 1_800_000_000  # a whole minute, in UTC


def make(url: str, tmp_path: Path, *schedules: Schedule) -> tuple[App, Scheduler]:
    app = App(Settings(database_url=url, blob_url=str(tmp_path / "blobs")))
    app.task(name="clock.tick", queue="clock")(lambda: None)
    return app, Scheduler(app.store, list(schedules), app.new_job)


def ticks(app: App) -> Counter[str]:
    return Counter(job.labels["tick"] for job in app.store.list_jobs(queue="clock", limit=10_000))


def test_two_schedulers_enqueue_a_tick_once(store_url: str, tmp_path: Path) -> None:
    every = Schedule("every", "* * * * * *", "clock.tick", queue="clock")
    first, one = make(store_url, tmp_path, every)
    second, other = make(store_url, tmp_path, every)
    try:
        assert one.run_due(T0) == 0  # starts the schedule: its first tick is the next one
        assert other.run_due(T0 + 1.2) == 1
        assert one.run_due(T0 + 1.5) == 0  # its view of the last tick was stale: lost
        assert one.run_due(T0 + 3.1) == 2
        assert other.run_due(T0 + 3.1) == 0
        assert sorted(ticks(first).items()) == [
            ("2027-01-15T08:00:01+00:00", 1),
            ("2027-01-15T08:00:02+00:00", 1),
            ("2027-01-15T08:00:03+00:00", 1),
        ]
        [job] = first.store.list_jobs(queue="clock", limit=1)
        assert (job.status, job.max_retries) == (JobState.QUEUED, 3)
    finally:
        first.close()
        second.close()


def test_racing_schedulers_enqueue_every_tick_once(store_url: str, tmp_path: Path) -> None:
    every = Schedule("every", "* * * * * *", "clock.tick", queue="clock")
    apps = [make(store_url, tmp_path, every) for _ in range(4)]
    apps[0][1].run_due(T0)
    barrier = threading.Barrier(len(apps))

    def race(scheduler: Scheduler) -> None:
        for second in range(1, 31):
            barrier.wait()
            scheduler.run_due(T0 + second + 0.5)

    threads = [threading.Thread(target=race, args=(s,)) for _, s in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        found = ticks(apps[0][0])
        assert len(found) == 30 and set(found.values()) == {1}
    finally:
        for app, _ in apps:
            app.close()


def test_missed_ticks_are_skipped_or_run_once(store_url: str, tmp_path: Path) -> None:
    skip = Schedule("skip", "* * * * *", "clock.tick", queue="clock", grace_seconds=60)
    once = Schedule(
        "once", "* * * * *", "clock.tick", queue="clock", grace_seconds=60, missed="once"
    )
    app, scheduler = make(store_url, tmp_path, skip, once)
    try:
        scheduler.run_due(T0)
        # Down for an hour: 60 ticks of each passed; the last one is within the grace.
        assert scheduler.run_due(T0 + 3600 + 5) == 3
        jobs = app.store.list_jobs(queue="clock", limit=100)
        by_schedule = Counter((j.labels["schedule"], j.labels["tick"][11:19]) for j in jobs)
        assert sorted(by_schedule) == [
            ("once", "08:59:00"),  # the latest missed tick, once for all of them
            ("once", "09:00:00"),
            ("skip", "09:00:00"),
        ]
        assert app.store.schedule_ticks(["skip", "once", "gone"]) == {
            "skip": T0 + 3600,
            "once": T0 + 3600,
        }
    finally:
        app.close()


def test_the_advance_is_a_compare_and_set_with_its_job(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.start_schedule("s", at=T0) == T0
        assert store.start_schedule("s", at=T0 + 50) == T0  # started once
        assert store.advance_schedule("s", after=T0, to=T0 + 60, job=None)
        assert not store.advance_schedule("s", after=T0, to=T0 + 120, job=None)
        assert store.schedule_ticks(["s"]) == {"s": T0 + 60}
    finally:
        store.close()
