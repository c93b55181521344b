"""Celery, with a real `celery worker` on Redis and on RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from celery import Celery

from deadletter.app import App
from deadletter.integrations.celery import capture
from tests.hosts import scenario
from tests.hosts.conftest import HostWorker, Names


@pytest.fixture
def celery_client(broker_url: str, names: Names, dl_app: App) -> Iterator[Celery]:
    """The producer's side, and the re-drive's: a Celery app on the test's broker."""
    client = Celery("dltest-client", broker=broker_url)
    client.conf.update(task_default_queue=names.queue, broker_connection_retry_on_startup=True)
    capture(client, dl_app)
    yield client
    if broker_url.startswith("amqp"):
        with client.connection_for_write() as connection:
            connection.default_channel.queue_delete(names.queue)
    client.close()


def celery_worker(
    start: Callable[..., HostWorker], broker_url: str, names: Names, **env: str
) -> HostWorker:
    """A `celery worker` of tests/hosts/celery_tasks.py; `env` adds to its environment."""
    return start(
        "celery",
        "-A",
        "tests.hosts.celery_tasks",
        "worker",
        "-Q",
        names.queue,
        "-n",
        f"{names.prefix}@%h",
        "-c",
        "2",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
        env={"DL_TEST_BROKER": broker_url, **env},
    )


@pytest.mark.parametrize("broker_url", ["redis", "amqp"], indirect=True)
def test_celery_failures_are_dead_lettered_handled_and_redriven(
    broker_url: str,
    names: Names,
    dl_app: App,
    celery_client: Celery,
    start_host_worker: Callable[..., HostWorker],
    redis_url: str,
) -> None:
    worker = celery_worker(start_host_worker, broker_url, names)

    def send(kind: str, key: str) -> None:
        celery_client.send_task("hosts.work", args=[kind, key], queue=names.queue)

    jobs = scenario.fail_every_class(dl_app, "celery", send, names, worker.log)
    scenario.check_history_and_handling(dl_app, "celery", names, jobs, task="hosts.work")
    scenario.redrive_from_the_cli(dl_app, names, jobs, redis_url)
