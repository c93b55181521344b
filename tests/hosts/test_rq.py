"""RQ, with a real `rq worker` (forking a work horse per job) on Redis."""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis
from rq import Queue, Retry

from deadletter.app import App
from deadletter.integrations import rq as rq_capture
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
