"""RQ, with a real `rq worker` (forking a work horse per job) on Redis."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis
from rq import Queue, Retry

from deadletter.app import App
from deadletter.integrations import rq as rq_capture
from deadletter.model import HostAttempt, HostGaveUp, Origin
from deadletter.ops.recovery import requeue
from tests.hosts import failing, scenario
from tests.hosts.conftest import HostWorker, Names


def rq_worker(start: Callable[..., HostWorker], redis_url: str, names: Names) -> HostWorker:
    return start(
        "rq.cli",
        "worker",
        "--url",
        redis_url,
        "--name",
        f"{names.prefix}-worker",
        "--exception-handler",
        "deadletter.integrations.rq.exception_handler",
        names.queue,
    )


def test_rq_failures_are_dead_lettered_handled_and_redriven(
    redis_url: str,
    names: Names,
    dl_app: App,
    start_host_worker: Callable[..., HostWorker],
) -> None:
    connection = Redis.from_url(redis_url)
    rq_capture.register(dl_app, connection)
    worker = rq_worker(start_host_worker, redis_url, names)
    queue = Queue(names.queue, connection=connection)

    def send(kind: str, key: str) -> None:
        # Client errors are enqueued without retries: retrying them cannot help.
        retry = None if kind in ("400", "404") else Retry(max=failing.RETRIES)
        queue.enqueue("tests.hosts.failing.work", kind, key, job_id=key, retry=retry, job_timeout=1)

    jobs = scenario.fail_every_class(dl_app, "rq", send, names, worker.log)
    scenario.check_history_and_handling(dl_app, "rq", names, jobs, task="tests.hosts.failing.work")
    scenario.redrive_from_the_cli(dl_app, names, jobs, redis_url)
    connection.close()


def test_a_redrive_run_again_after_a_crash_sends_one_message(
    redis_url: str, names: Names, dl_app: App
) -> None:
    """The re-drive's worker dies after RQ took the message and before deadletter
    recorded it as sent: the re-drive runs again, finds the job in RQ, sends nothing."""
    connection = Redis.from_url(redis_url)
    rq_capture.register(dl_app, connection)
    key = f"{names.prefix}-once"
    origin = Origin("rq", names.queue, "tests.hosts.failing.work", key, {"args": ["500", key]})
    attempt = HostAttempt(
        "e-once", "rq", key, 1.0, 2.0, "w", "HTTPError", "HTTP 500: down", "", 500, None, None
    )
    [job_id] = dl_app.store.record_host_events(
        [HostGaveUp(attempt, origin, "rq", "rq-dlq", 3, "gave up")], now=3.0
    )
    dl_app.worker(dlq_only=True).run(burst=True)
    assert requeue(
        dl_app.store, job_id, actor="ana", policy=dl_app.policy, payload_limit=1 << 20
    ).done
    redrive = dl_app.tasks["deadletter.redrive"]
    redrive(job_id, 1)
    with dl_app.store.transaction() as execute:  # the record of the send is lost
        execute("UPDATE host_messages SET sent_at = NULL WHERE job_id = ?", (job_id,))
    redrive(job_id, 1)
    assert Queue(names.queue, connection=connection).count == 1
    connection.close()
