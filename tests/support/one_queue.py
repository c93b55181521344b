"""Settings of an app with one queue whose retries come at once, for tests that run a
real worker over a few jobs and look at what it reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deadletter.config import Settings, settings_from_mapping


def one_queue_settings(
    store_url: str, tmp_path: Path, queue: str, *, max_retries: int = 1, **more: Any
) -> Settings:
    """`queue` retried `max_retries` times without backoff; `more`: other sections."""
    return settings_from_mapping(
        {
            "database_url": store_url,
            "blob_url": str(tmp_path / "blobs"),
            "worker": {"poll_interval": 0.02},
            "dlq": {"log_file": str(tmp_path / "dlq.log")},
            "queues": {queue: {"backoff_base": 0.0, "max_retries": max_retries}},
            **more,
        }
    )
