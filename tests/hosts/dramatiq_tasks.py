"""The Dramatiq actors of the tests, run by a real `dramatiq` worker process."""

from __future__ import annotations

import os

import dramatiq

from deadletter.app import App
from deadletter.integrations.dramatiq import Capture
from tests.hosts import failing
from tests.hosts.brokers import make_broker

broker = make_broker(os.environ["DL_TEST_BROKER"], os.environ["DL_TEST_PREFIX"])
dramatiq.set_broker(broker)
if os.environ.get("DL_TEST_CAPTURE", "1") == "1":
    broker.add_middleware(Capture(App()))  # settings from DEADLETTER_* in the environment


@dramatiq.actor(
    actor_name="hosts.work",
    queue_name=os.environ["DL_TEST_QUEUE"],
    max_retries=failing.RETRIES,
    min_backoff=100,
    max_backoff=200,
    time_limit=int(failing.TIME_LIMIT * 1000),
    throws=(failing.ClientError,),
)
def work(kind: str, key: str) -> None:
    failing.work(kind, key)
