"""Metrics per queue and task (migration 0019): a real worker runs N jobs that succeed,
M that fail once and then succeed, K that fail until they are dead-lettered, and the
counters and histograms of `/metrics` change by exactly those jobs; pruning the
succeeded jobs afterwards changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deadletter.api.metrics import registry_for
from deadletter.app import App
from deadletter.integrations.core import Failed, Recorder
from deadletter.model import Attempt, LeasedJob, NewJob, Origin
from deadletter.ops import system
from deadletter.store.base import DEAD_LETTER_TASK, Retrying
from deadletter.store.postgres import PostgresStore
from deadletter.worker.slots import current_job
from tests.support import worker_process
from tests.support.ghost import began_and_vanished
from tests.support.one_queue import one_queue_settings

ROOT = Path(__file__).resolve().parents[2]
Q = "metered"
N, M, K = 3, 2, 2


@pytest.fixture
def app(store_url: str, tmp_path: Path) -> Iterator[App]:
    settings = one_queue_settings(store_url, tmp_path, Q)
    application = App(settings)

    @application.task(queue=Q, name="meter.ok")
    def ok() -> None:
        time.sleep(0.03)

    @application.task(queue=Q, name="meter.flaky")
    def flaky() -> None:
        if current_job.get().attempt == 1:
            raise ConnectionResetError("first attempt fails")

    @application.task(queue=Q, name="meter.doomed")
    def doomed() -> None:
        raise ConnectionResetError("always fails")

    yield application
    application.close()


def scraped(app: App) -> dict[tuple[str, str, str], float]:
    """`/metrics`' samples of queue Q as {(sample name, task, le): value}."""
    text = generate_latest(registry_for(app)).decode()
    return {
        (s.name, s.labels["task"], s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("queue") == Q and "task" in s.labels
    }


def test_metrics_change_by_exactly_the_jobs_run(app: App) -> None:
    assert scraped(app) == {}
    for task, count in (("meter.ok", N), ("meter.flaky", M), ("meter.doomed", K)):
        for _ in range(count):
            app.enqueue(app.tasks[task].spec())
    enqueued = scraped(app)
    assert enqueued[("deadletter_jobs_enqueued_total", "meter.ok", "")] == N
    assert enqueued[("deadletter_jobs_started_total", "meter.ok", "")] == 0
    app.worker(queues=[Q]).run(burst=True)
    found = scraped(app)

    expected = {
        "enqueued": {"meter.ok": N, "meter.flaky": M, "meter.doomed": K},
        "started": {"meter.ok": N, "meter.flaky": 2 * M, "meter.doomed": 2 * K},
        "released": {"meter.ok": 0, "meter.flaky": 0, "meter.doomed": 0},
        "succeeded": {"meter.ok": N, "meter.flaky": M, "meter.doomed": 0},
        "retried": {"meter.ok": 0, "meter.flaky": M, "meter.doomed": K},
        "failed": {"meter.ok": 0, "meter.flaky": M, "meter.doomed": 2 * K},
        "dead_lettered": {"meter.ok": 0, "meter.flaky": 0, "meter.doomed": K},
    }
    for event, by_task in expected.items():
        for task, count in by_task.items():
            assert found[(f"deadletter_jobs_{event}_total", task, "")] == count, (event, task)
    for task, attempts in (("meter.ok", N), ("meter.flaky", 2 * M), ("meter.doomed", 2 * K)):
        assert found[("deadletter_lease_losses_total", task, "")] == 0
        for histogram in ("deadletter_job_run_seconds", "deadletter_job_wait_seconds"):
            assert found[(f"{histogram}_count", task, "")] == attempts
            assert found[(f"{histogram}_bucket", task, "+Inf")] == attempts
    # Each `ok` ran at least 30 ms: none within 25 ms (a lower bound only, no timing).
    assert found[("deadletter_job_run_seconds_bucket", "meter.ok", "0.025")] == 0
    assert found[("deadletter_job_run_seconds_sum", "meter.ok", "")] >= 0.03 * N

    assert app.store.prune_finished(Q, before=time.time() + 1, limit=100) == N + M
    assert scraped(app) == found


def test_a_lease_given_back_is_not_a_retry(app: App) -> None:
    app.enqueue(app.tasks["meter.ok"].spec())
    now = time.time()
    [first] = app.store.lease([Q], limit=1, worker="w", now=now, lease_seconds=30)
    failed = Attempt(first.id, 1, now, now, "w", "builtins.ValueError", "no")
    app.store.finish([Retrying(first.lease, failed, run_at=now)], now=now)
    # Its second attempt is given back before it began (a stop, a paused queue).
    [second] = app.store.lease([Q], limit=1, worker="w", now=now, lease_seconds=30)
    assert app.store.release([second.lease], now=now) == 1

    tasks = system.figures(app.store, gone_after=60, now=now).tasks
    counts = tasks[(Q, "meter.ok")].counts
    # Counted as released, and as nothing else.
    assert counts == {"enqueued": 1, "started": 2, "failed": 1, "retried": 1, "released": 1}


def _stopped(app: App, job: LeasedJob) -> None:
    """Its worker stops, or its queue is paused: the lease is given back."""
    assert app.store.release([job.lease], now=time.time()) == 1


def _lost_unbegun(app: App, job: LeasedJob) -> None:
    """Its worker is lost before the job began: the reclaim gives the lease back."""
    assert app.store.reclaim_expired(limit=1, now=time.time() + 60, lease_seconds=30) == []


@pytest.mark.parametrize("give_back", [_stopped, _lost_unbegun])
def test_a_lease_given_back_unstarted_counts_as_released(
    app: App, give_back: Callable[[App, LeasedJob], None]
) -> None:
    """The next lease counts as started again: started - released = attempts that ran."""
    app.enqueue(app.tasks["meter.ok"].spec())
    [job] = app.store.lease([Q], limit=1, worker="w", now=time.time(), lease_seconds=30)
    give_back(app, job)
    app.worker(queues=[Q]).run(burst=True)
    found = scraped(app)
    events = ("started", "released", "succeeded", "retried")
    counts = {e: found[(f"deadletter_jobs_{e}_total", "meter.ok", "")] for e in events}
    assert counts == {"started": 2, "released": 1, "succeeded": 1, "retried": 0}


def test_a_reclaimed_lease_counts_as_lost(app: App) -> None:
    app.enqueue(app.tasks["meter.ok"].spec())
    now = time.time()
    began_and_vanished(app.store, Q, worker="gone", lease_seconds=1)
    [lost] = app.store.reclaim_expired(limit=1, now=now + 2, lease_seconds=30)
    assert lost.lost_worker == "gone"
    tasks = system.figures(app.store, gone_after=60, now=now).tasks
    assert tasks[(Q, "meter.ok")].counts == {"enqueued": 1, "started": 1, "lease_lost": 1}


def test_a_worker_process_moves_the_metrics_by_what_it_ran(store_url: str, tmp_path: Path) -> None:
    """A `deadletter` worker in a process of its own (tests.support.worker_process: jobs
    fail at random, 3 retries): the counters match its own log of every execution."""
    log = tmp_path / "executions.log"
    app = worker_process.build(store_url, str(log), "producer", 30.0)
    try:
        task = app.tasks["crash.work"]
        ids = app.enqueue_many(task.spec(n) for n in range(200))
        command = [sys.executable, "-m", "tests.support.worker_process"]
        subprocess.run([*command, store_url, str(log), "burst", "30"], cwd=ROOT, timeout=240)
        tasks = system.figures(app.store, gone_after=60, now=time.time()).tasks
    finally:
        app.close()
    ran = [line.split() for line in log.read_text().splitlines()]
    events = Counter(fields[4] for fields in ran)
    fails = Counter(fields[0] for fields in ran if fields[4] == "fail")
    dead = sum(1 for count in fails.values() if count == 4)  # 1 attempt + 3 retries
    counts = tasks[(worker_process.QUEUE, "crash.work")].counts
    assert counts["enqueued"] == len(ids)
    assert counts["started"] == events["start"]
    assert counts["succeeded"] == events["ok"] == len(ids) - dead
    assert counts["failed"] == events["fail"]
    assert counts.get("dead_lettered", 0) == dead
    assert counts.get("retried", 0) == events["fail"] - dead


def test_a_job_of_another_system_that_comes_in_dead_lettered_counts_as_such(app: App) -> None:
    origin = Origin("rq", "emails", "mail.send", "m1", {"args": [], "kwargs": {}})
    failed = Failed("m1", origin, ValueError("no"), "Traceback ...", 1.0, 2.0)

    Recorder(app, "rq").gave_up(failed, "RQ gave up after 1 attempt(s)")

    tasks = system.figures(app.store, gone_after=60, now=time.time()).tasks
    assert {key: figures.counts for key, figures in tasks.items()} == {
        ("rq", "mail.send"): {"dead_lettered": 1},  # not enqueued: it never ran here
        ("rq-dlq", DEAD_LETTER_TASK): {"enqueued": 1},  # its dead letter, to be handled
    }


def test_postgres_pairs_a_statements_rows_one_to_one_after_a_statement_of_one_row(
    postgres_url: str,
) -> None:
    """Migration 0034: PL/pgSQL plans the update trigger's queries once per connection,
    for the rows of its first call. After a statement of one row, pairing the old and new
    versions of a batch's rows compared every pair (rows x rows), for a lease and for a
    heartbeat alike. auto_explain reports the pairs each of the trigger's joins
    discarded; the metrics count each job once."""
    jobs = 2_000
    store = PostgresStore(postgres_url)
    try:
        now = time.time()
        store.enqueue(
            [
                NewJob(f"j{n}", Q, "t", {}, 3, f"{Q}-dlq", run_at=now, created_at=now)
                for n in range(jobs + 1)
            ]
        )
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        notices: list[str] = []
        pg.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        for setting in AUTO_EXPLAIN:
            pg.execute(setting)
        pg.execute(START, (["j0"],))
        pg.execute(START, ([f"j{n}" for n in range(1, jobs + 1)],))
        pg.execute("UPDATE queue_jobs SET lease_expires_at = lease_expires_at + 30")
        started = pg.execute(COUNTED, ("started",)).fetchone()
    discarded = sum(
        int(n) for n in re.findall(r"Rows Removed by Join Filter: (\d+)", "".join(notices))
    )
    assert started == (jobs + 1,)
    assert discarded < jobs


AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_level = notice",
    "SET client_min_messages = notice",
)
# A lease's change, by the statement: running, a new token, an expiry.
START = (
    "UPDATE queue_jobs SET status = 'running', attempts = attempts + 1,"
    " lease_token = lease_token + 1, lease_expires_at = extract(epoch FROM now()) + 60,"
    " attempt_started_at = extract(epoch FROM now()) WHERE id = ANY(%s::text[])"
)
COUNTED = "SELECT sum(count)::int FROM task_metrics WHERE metric = %s"
