"""`deadletter import`: failures a host already holds (its workers ran without capture)
are adopted exactly once, with a dry run first, and then handled like any other."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
import pytest
from celery import Celery
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from redis import Redis
from rq import Queue

from deadletter.app import App
from deadletter.integrations.dramatiq import held_failures
from deadletter.model import JobState
from tests.hosts.brokers import make_broker
from tests.hosts.conftest import HostWorker, Names, jobs_in, wait_for
from tests.hosts.scenario import cli, cli_text

COUNT = 5
NO_CAPTURE = {"DL_TEST_CAPTURE": "0"}


def import_twice(app: App, system: str, *options: str, status: int = 404) -> None:
    """Dry run, import, import again: COUNT adopted once; then handled."""
    dry = cli(app, "import", system, *options, "--dry-run")
    assert (dry["found"], dry["adopted"], dry["known"]) == (COUNT, COUNT, 0)
    assert jobs_in(app, system, JobState.DEAD_LETTERED) == []
    first = cli(app, "import", system, *options)
    assert (first["found"], first["adopted"], first["known"]) == (COUNT, COUNT, 0)
    again = cli(app, "import", system, *options)
    assert (again["found"], again["adopted"], again["known"]) == (COUNT, 0, COUNT)
    app.worker(queues=[system], dlq_only=True).run(burst=True)
    failed = jobs_in(app, system, JobState.FAILED)
    assert len(failed) == COUNT
    for job in failed:
        [attempt] = app.store.attempts(job.id)
        assert attempt.http_status == status and (attempt.error_type or "").endswith("Error")
        origin = app.store.origin(job.id)
        assert origin is not None and origin.arguments["args"][0] == str(status)


def test_import_rq_failed_job_registry(
    redis_url: str, names: Names, dl_app: App, start_host_worker: Callable[..., HostWorker]
) -> None:
    connection = Redis.from_url(redis_url)
    queue = Queue(names.queue, connection=connection)
    for index in range(COUNT):
        queue.enqueue("tests.hosts.failing.work", "404", f"{names.prefix}-{index}")
    worker = start_host_worker("rq.cli", "worker", "--burst", "--url", redis_url, names.queue)
    # Not the burst worker's exit: RQ 3.0 with redis-py 8.2 hangs in its teardown
    # (the join of its pub/sub thread) once every job is done, until a signal stops it.
    wait_for(
        lambda: queue.failed_job_registry.count == COUNT,
        timeout=60,
        what="RQ to fail every job",
        log=worker.log,
    )
    worker.stop()
    import_twice(dl_app, "rq", "--url", redis_url, "--queue", names.queue)
    connection.close()


def test_an_import_says_what_it_found_in_a_line(redis_url: str, names: Names, dl_app: App) -> None:
    """Without --json: one line of counts (nothing failed on this queue)."""
    said = cli_text(dl_app, "import", "rq", "--url", redis_url, "--queue", names.queue, "--dry-run")
    assert said.strip() == "rq: 0 failures found, would adopt 0, 0 already here"


@pytest.mark.parametrize("broker_url", ["redis", "amqp"], indirect=True)
def test_import_dramatiq_dead_letter_queue(
    broker_url: str, names: Names, dl_app: App, start_host_worker: Callable[..., HostWorker]
) -> None:
    broker = make_broker(broker_url, names.prefix)
    broker.declare_queue(names.queue)
    for index in range(COUNT):
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=names.queue,
            actor_name="hosts.work",
            # 500, retried: Dramatiq keeps no traceback of an exception in `throws` (404)
            args=("500", f"{names.prefix}-{index}"),
            kwargs={},
            options={},
        )
        broker.enqueue(message)
    worker = start_host_worker(
        "dramatiq",
        "tests.hosts.dramatiq_tasks",
        "--processes",
        "1",
        "--threads",
        "1",
        "--queues",
        names.queue,
        env={"DL_TEST_BROKER": broker_url, **NO_CAPTURE},
    )
    wait_for(
        lambda: len(list(held_failures(broker, names.queue))) == COUNT,
        timeout=60,
        what="Dramatiq to dead-letter every message",
        log=worker.log,
    )
    worker.stop()
    namespace = f"dramatiq-{names.prefix}"
    options = ["--url", broker_url, "--queue", names.queue, "--namespace", namespace]
    import_twice(dl_app, "dramatiq", *options, status=500)
    if isinstance(broker, RabbitmqBroker):
        for queue in (names.queue, f"{names.queue}.DQ", f"{names.queue}.XQ"):
            broker.channel.queue_delete(queue)
    broker.close()


def test_import_celery_failed_results(
    redis_url: str, names: Names, dl_app: App, start_host_worker: Callable[..., HostWorker]
) -> None:
    backend = redis_url.replace("/0", "/1")
    client = Celery("dltest-import", broker=redis_url)
    for index in range(COUNT):
        client.send_task("hosts.work", args=["404", f"{names.prefix}-{index}"], queue=names.queue)
    env = {"DL_TEST_BROKER": redis_url, "DL_TEST_BACKEND": backend, **NO_CAPTURE}
    worker = start_host_worker(
        "celery",
        "-A",
        "tests.hosts.celery_tasks",
        "worker",
        "-Q",
        names.queue,
        "-n",
        f"{names.prefix}@%h",
        "-c",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
        env=env,
    )
    results = Redis.from_url(backend)
    wait_for(
        lambda: sum(1 for _ in results.scan_iter(match="celery-task-meta-*")) >= COUNT,
        timeout=60,
        what="Celery to store every failed result",
        log=worker.log,
    )
    import_twice(dl_app, "celery", "--backend", backend)
    results.flushdb()
    results.close()
    client.close()
