"""Dramatiq brokers of a test: its own Redis namespace, or RabbitMQ with its own queues."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker


def make_broker(url: str, prefix: str) -> dramatiq.Broker:
    """Redis keys under the test's own namespace; RabbitMQ queues are the test's own."""
    if url.startswith("amqp"):
        # Kombu writes the default vhost "/" as a trailing "//"; pika wants it quoted.
        return RabbitmqBroker(url=url.removesuffix("//") + "/%2F")
    return RedisBroker(url=url, namespace=f"dramatiq-{prefix}")  # type: ignore[no-untyped-call]
