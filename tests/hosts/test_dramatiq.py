"""Dramatiq, with a real `dramatiq` worker process on Redis and on RabbitMQ."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from deadletter.app import App
from deadletter.integrations.dramatiq import Capture
from tests.hosts import scenario
from tests.hosts.brokers import make_broker
from tests.hosts.conftest import HostWorker, Names


@pytest.fixture
def client_broker(broker_url: str, names: Names, dl_app: App) -> Iterator[dramatiq.Broker]:
    """The producer's side, and the re-drive's: a broker on the test's queue."""
    broker = make_broker(broker_url, names.prefix)
    broker.add_middleware(Capture(dl_app))
    broker.declare_queue(names.queue)
    yield broker
    if isinstance(broker, RabbitmqBroker):
        for queue in (names.queue, f"{names.queue}.DQ", f"{names.queue}.XQ"):
            broker.channel.queue_delete(queue)
    broker.close()


@pytest.mark.parametrize("broker_url", ["redis", "amqp"], indirect=True)
def test_dramatiq_failures_are_dead_lettered_handled_and_redriven(
    broker_url: str,
    names: Names,
    dl_app: App,
    client_broker: dramatiq.Broker,
    start_host_worker: Callable[..., HostWorker],
    redis_url: str,
) -> None:
    worker = start_host_worker(
        "dramatiq",
        "tests.hosts.dramatiq_tasks",
        "--processes",
        "1",
        "--threads",
        "2",
        "--queues",
        names.queue,
        env={"DL_TEST_BROKER": broker_url},
    )

    def send(kind: str, key: str) -> None:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=names.queue,
            actor_name="hosts.work",
            args=(kind, key),
            kwargs={},
            options={},
        )
        client_broker.enqueue(message)

    jobs = scenario.fail_every_class(dl_app, "dramatiq", send, names, worker.log)
    scenario.check_history_and_handling(dl_app, "dramatiq", names, jobs, task="hosts.work")
    scenario.redrive_from_the_cli(dl_app, names, jobs, redis_url)
