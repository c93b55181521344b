"""Dramatiq: its failures dead-lettered here, and re-driven onto their broker.

    from deadletter.integrations.dramatiq import Capture
    broker.add_middleware(Capture(dl_app))

A middleware. Whether Dramatiq retries a failed message is decided by its Retries
middleware in `after_process_message`, and Dramatiq calls those hooks in reverse
order of registration; so Capture acts one step later, when the worker acknowledges
the message: a failed message that is acked was retried (an attempt recorded here), a
failed message that is rejected went to Dramatiq's dead-letter queue (dead-lettered
here too). A message that succeeds costs two dictionary look-ups, and one attribute
for its start time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

try:
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.common import q_name, xq_name
    from dramatiq.middleware import Middleware, Retries
except ImportError as exc:  # an optional extra
    raise ImportError(
        "deadletter.integrations.dramatiq needs Dramatiq: pip install deadletter[dramatiq]"
    ) from exc

from deadletter.app import App
from deadletter.integrations import imports
from deadletter.integrations.core import (
    JOB_KEY,
    Failed,
    Recorder,
    add_sender,
    arguments,
    capture_safely,
)
from deadletter.integrations.imports import Held, ImportReport, Run
from deadletter.model import Origin, Payload
from deadletter.worker.tracebacks import format_failure

SYSTEM = "dramatiq"
STARTED = "_deadletter_started"


class Capture(Middleware):
    """Records the broker's failures in `dl_app`, and lets `dl_app`'s workers re-drive."""

    def __init__(self, dl_app: App) -> None:
        self.recorder = Recorder(dl_app, SYSTEM)
        self._sender: DramatiqSender | None = None

    def after_declare_queue(self, broker: dramatiq.Broker, queue_name: str) -> None:
        if self._sender is None:  # the first hook that knows the broker
            self._sender = DramatiqSender(broker)
            add_sender(self.recorder.app, self._sender)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        setattr(message, STARTED, time.time())

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        options = message.options
        if exception is None and (options.get("retries") or options.get(JOB_KEY)):
            capture_safely("a Dramatiq success", self.recorder.succeeded, message.message_id)

    def before_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        exc = _exception(message)
        if exc is None:
            return
        failed = _failed(message, exc)
        if any(isinstance(m, Retries) for m in broker.middleware):
            capture_safely("a Dramatiq retry", self.recorder.attempt_failed, failed)
        else:  # without Retries, Dramatiq drops a failed message: it ends here
            reason = "Dramatiq has no Retries middleware: the failed message was dropped"
            capture_safely("a Dramatiq failure", self.recorder.gave_up, failed, reason)

    def before_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        exc = _exception(message)
        if exc is not None:
            retries = message.options.get("retries", 0)
            reason = f"Dramatiq gave up after {retries} retries (message dead-lettered)"
            capture_safely(
                "a Dramatiq failure", self.recorder.gave_up, _failed(message, exc), reason
            )


def _exception(message: Any) -> BaseException | None:
    """The exception the worker stuffed into the message; Dramatiq clears it only after
    the message is acked or rejected."""
    exc = getattr(message, "_exception", None)
    return exc if isinstance(exc, BaseException) else None


def _failed(message: Any, exc: BaseException) -> Failed:
    now = time.time()
    options = {key: message.options[key] for key in _KEPT if key in message.options}
    origin = Origin(
        system=SYSTEM,
        queue=q_name(message.queue_name),
        task=message.actor_name,
        original_id=message.message_id,
        arguments=arguments(message.args, message.kwargs),
        options=options,
    )
    return Failed(
        message_id=message.message_id,
        origin=origin,
        exception=exc,
        traceback=format_failure(exc),
        started_at=getattr(message, STARTED, now),
        ended_at=now,
    )


def import_failures(
    dl_app: App, *, url: str, queues: Sequence[str], namespace: str, dry_run: bool
) -> ImportReport:
    """`deadletter import dramatiq`: adopt the messages of the queues' dead-letter queues
    on a Redis (`redis://`, under `namespace`) or RabbitMQ (`amqp://`) broker."""
    broker: dramatiq.Broker
    if url.startswith("amqp"):
        # Kombu writes the default vhost "/" as a trailing "//"; pika wants it quoted.
        broker = RabbitmqBroker(url=url.removesuffix("//") + "/%2F" if url.endswith("//") else url)
    else:
        broker = RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    try:
        held = (failure for queue in queues for failure in held_failures(broker, queue))
        return imports.import_failures(Recorder(dl_app, SYSTEM), held, dry_run=dry_run)
    finally:
        broker.close()


def held_failures(broker: dramatiq.Broker, queue_name: str) -> Iterator[Held]:
    """The messages on `queue_name`'s dead-letter queue, for `deadletter import
    dramatiq`; they stay there. Dramatiq keeps the traceback of the last failure only,
    and none for an exception in the actor's `throws`."""
    if isinstance(broker, RedisBroker):
        found = _redis_dead_letters(broker, queue_name)
    elif isinstance(broker, RabbitmqBroker):
        found = _rabbitmq_dead_letters(broker, queue_name)
    else:
        raise TypeError(f"cannot read the dead letters of a {type(broker).__name__}")
    for message in found:
        options = message.options
        ended = float(options.get("requeue_timestamp") or message.message_timestamp) / 1000
        run = Run(str(options.get("traceback") or ""), ended)
        origin = Origin(
            system=SYSTEM,
            queue=q_name(message.queue_name),
            task=message.actor_name,
            original_id=message.message_id,
            arguments=arguments(message.args, message.kwargs),
            options={key: options[key] for key in _KEPT if key in options},
        )
        reason = f"on Dramatiq's dead-letter queue after {options.get('retries', 0)} retries"
        yield Held(message.message_id, origin, [run], reason)


def _redis_dead_letters(broker: RedisBroker, queue_name: str) -> list[dramatiq.Message[Any]]:
    key = f"{broker.namespace}:{xq_name(queue_name)}"
    # redis-py types every reply as any reply of any command: these are lists of bytes.
    ids = cast(list[bytes], broker.client.zrange(key, 0, -1))
    bodies = cast(list[bytes | None], broker.client.hmget(f"{key}.msgs", ids)) if ids else []
    return [dramatiq.Message.decode(body) for body in bodies if body is not None]


def _rabbitmq_dead_letters(broker: RabbitmqBroker, queue_name: str) -> list[dramatiq.Message[Any]]:
    """Read without taking: every message got is given back (nack, requeue) at the end."""
    channel = broker.channel
    messages, last_tag = [], None
    while True:
        method, _, body = channel.basic_get(xq_name(queue_name), auto_ack=False)
        if method is None:
            break
        last_tag = method.delivery_tag
        messages.append(dramatiq.Message.decode(body))
    if last_tag is not None:
        channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
    return messages


# Options of a message that a re-drive sends again (retry policy and limits).
_KEPT = ("max_retries", "min_backoff", "max_backoff", "time_limit")


class DramatiqSender:
    """Re-drives with `broker.enqueue` onto the message's own queue."""

    system = SYSTEM

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def send(self, origin: Origin, message_id: str, payload: Payload, job_id: str) -> None:
        self.broker.declare_queue(origin.queue)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=origin.queue,
            actor_name=origin.task,
            args=tuple(payload.get("args", [])),
            kwargs=payload.get("kwargs", {}),
            options={**origin.options, JOB_KEY: job_id},
            message_id=message_id,
            message_timestamp=int(time.time() * 1000),
        )
        self.broker.enqueue(message)

    def already_sent(self, origin: Origin, message_id: str) -> bool:
        return False  # a broker keeps no record of a message once it has been consumed
