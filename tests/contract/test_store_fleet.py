"""Paused queues and live workers in the store, on every backend (issue 12)."""

from __future__ import annotations

import threading
import time

from deadletter.store.base import Store
from deadletter.store.fleet import QueuePause, QueueRate, RunningJob, WorkerPresence
from deadletter.store.postgres import PostgresStore
from tests.contract.test_store_basics import NOW, Q, lease, new_job

PAUSE = QueuePause(Q, "payment provider down", "cli:ops", NOW)


def presence(
    name: str,
    *,
    heartbeat_at: float,
    running: tuple[RunningJob, ...] = (),
    throughput: dict[str, QueueRate] | None = None,
) -> WorkerPresence:
    return WorkerPresence(
        name=name,
        host="box-1",
        pid=4242,
        version="1.2.3",
        queues=(Q, f"{Q}-dlq"),
        concurrency=4,
        started_at=NOW - 100,
        heartbeat_at=heartbeat_at,
        running=running,
        throughput=throughput or {},
    )


def test_a_paused_queue_is_not_leased_but_still_takes_jobs(store: Store) -> None:
    assert store.pause_queue(PAUSE)
    store.enqueue([new_job("a"), new_job("b", queue="other")])

    assert [job.id for job in lease(store, queues=[Q, "other"])] == ["b"]
    assert store.next_due([Q]) is None
    assert store.get_job("a") is not None

    assert store.resume_queue(Q)
    assert [job.id for job in lease(store)] == ["a"]


def test_pausing_twice_keeps_the_first_reason_and_resume_says_whether_it_was_paused(
    store: Store,
) -> None:
    assert store.pause_queue(PAUSE)
    assert not store.pause_queue(QueuePause(Q, "again", "cli:other", NOW + 5))
    assert store.paused_queues() == {Q: PAUSE}

    assert store.resume_queue(Q)
    assert not store.resume_queue(Q)
    assert store.paused_queues() == {}


def test_a_paused_queue_leaves_its_running_jobs_alone(store: Store) -> None:
    store.enqueue([new_job("a")])
    [running] = lease(store)
    store.pause_queue(PAUSE)

    assert store.extend([running.lease], until=NOW + 60) == []
    assert store.next_due([Q]) == NOW + 60


def test_a_worker_beats_reads_back_and_drops_out(store: Store) -> None:
    job = RunningJob("a", "shop.charge", Q, NOW - 3)
    store.beat_worker(presence("w1", heartbeat_at=NOW, running=(job,)), forget_before=0)
    store.beat_worker(presence("w2", heartbeat_at=NOW - 60), forget_before=0)

    assert store.live_workers(since=NOW - 30) == [presence("w1", heartbeat_at=NOW, running=(job,))]
    assert {w.name for w in store.live_workers(since=NOW - 90)} == {"w1", "w2"}

    # A later heartbeat replaces what runs now; a worker silent past `forget` is deleted.
    store.beat_worker(presence("w1", heartbeat_at=NOW + 5), forget_before=NOW - 30)
    assert store.live_workers(since=0) == [presence("w1", heartbeat_at=NOW + 5)]

    store.drop_worker("w1")
    assert store.live_workers(since=0) == []


def test_each_heartbeat_replaces_the_workers_throughput_by_queue(store: Store) -> None:
    first = {Q: QueueRate(120.5, 3.25), f"{Q}-dlq": QueueRate(3.25, 0.0)}
    store.beat_worker(presence("w1", heartbeat_at=NOW, throughput=first), forget_before=0)
    assert [w.throughput for w in store.live_workers(since=0)] == [first]

    store.beat_worker(presence("w1", heartbeat_at=NOW + 5), forget_before=0)
    assert [w.throughput for w in store.live_workers(since=0)] == [{}]


def test_resuming_wakes_a_worker_waiting_on_the_queue(postgres_url: str) -> None:
    waiting, operator = PostgresStore(postgres_url), PostgresStore(postgres_url)
    stop = threading.Event()
    try:
        operator.pause_queue(PAUSE)
        waiting.wait_for_work([Q], 0.05, stop)  # now listening
        threading.Timer(0.2, operator.resume_queue, args=(Q,)).start()
        started = time.monotonic()
        waiting.wait_for_work([Q], 30, stop)
        assert time.monotonic() - started < 5
    finally:
        waiting.close()
        operator.close()


def test_waiting_jobs_count_queued_and_retrying_jobs_by_queue(store: Store) -> None:
    store.enqueue([new_job("a"), new_job("b"), new_job("c", queue="other")])
    lease(store, limit=1)

    assert store.waiting_jobs() == {Q: 1, "other": 1}
