"""Real workers, real faults; one checker (tests.faults.checker) requires every fault
finding to be empty: nothing lost, duplicated or stuck, no attempt charged to a job that
never started, no start of a job whose lease was taken over, no worker ending on its own."""

from __future__ import annotations

import random
import time

import pytest

from deadletter.app import App
from tests.faults import worker
from tests.faults.conftest import Fleet
from tests.faults.fleet import FULL

# The scale, 50 kills during 10,000 jobs, with DEADLETTER_FAULTS_FULL=1 (about a
# minute per backend, and up to 4 for the burst workers to drain what is left on a busy
# machine); CI runs 20 kills during 1,500 jobs.
JOBS, KILLS, KILLERS, DRAIN = (10_000, 50, 10, 240.0) if FULL else (1_500, 20, 4, 60.0)


def enqueue(fleet: Fleet, count: int, killers: int = 0) -> tuple[App, list[str], set[str]]:
    """`count` jobs, `killers` of them spread through the queue so that each one sits
    inside a default-sized batch of innocent jobs."""
    app = worker.build(fleet.url, fleet.folder, 1.0)
    task = app.tasks["faults.work"]
    step = count // (killers + 1)
    kills = {step * (n + 1): ("exit" if n % 2 else "sigkill") for n in range(killers)}
    ids = app.enqueue_many(task.spec(n, kills.get(n, "")) for n in range(count))
    return app, ids, {ids[n] for n in kills}


@pytest.mark.slow
def test_sigkills_and_worker_killing_jobs(fleet: Fleet) -> None:
    app, ids, killers = enqueue(fleet, JOBS, killers=KILLERS)
    rng = random.Random(7)
    running = [fleet.start() for _ in range(2)]
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.1, 0.5))
        running = [proc for proc in running if proc.poll() is None]
        if running:
            fleet.kill(running.pop(rng.randrange(len(running))))
        while len(running) < 2:
            running.append(fleet.start())
    fleet.kill_all()
    fleet.drain(DRAIN)
    assert fleet.check(app, ids, killers).problems == {}
    app.close()


@pytest.mark.slow
def test_workers_frozen_past_their_lease(fleet: Fleet) -> None:
    app = worker.build(fleet.url, fleet.folder, 1.0)
    task = app.tasks["faults.work"]
    ids = app.enqueue_many(task.spec(n, "", 0.01) for n in range(1500))
    running = [fleet.start() for _ in range(3)]
    for victim in running:
        time.sleep(0.5)
        fleet.freeze(victim, 2.0)
    fleet.drain(DRAIN)
    fleet.kill_all()
    assert fleet.check(app, ids, set()).problems == {}
    app.close()
