"""The Celery app of the tests, run by a real `celery worker`; settings from the environment."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from deadletter.app import App
from deadletter.integrations.celery import capture
from tests.hosts import failing

celery_app = Celery(
    "dltest", broker=os.environ["DL_TEST_BROKER"], backend=os.environ.get("DL_TEST_BACKEND")
)
celery_app.conf.update(
    result_extended=True,
    task_default_queue=os.environ["DL_TEST_QUEUE"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
)
if os.environ.get("DL_TEST_CAPTURE", "1") == "1":
    # DEADLETTER_DATABASE_URL and DEADLETTER_SPOOL_DIR from the environment
    capture(celery_app, App())


@celery_app.task(
    name="hosts.work",
    bind=True,
    autoretry_for=(Exception,),
    dont_autoretry_for=(failing.ClientError,),
    max_retries=failing.RETRIES,
    default_retry_delay=0.1,
    soft_time_limit=failing.TIME_LIMIT,
)
def work(self: Any, kind: str, key: str) -> str:
    try:
        return failing.work(kind, key)
    except failing.HTTPError as exc:
        if exc.retry_after is None:
            raise
        # Retry-After honoured, as a Celery task does it.
        raise self.retry(exc=exc, countdown=exc.retry_after) from exc
