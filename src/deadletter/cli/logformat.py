"""Log lines of `worker` and `serve`: text for a person, or with `--log-format json`
(the `log_format` setting) one JSON object per line for a log pipeline.

A JSON line carries `time` (ISO 8601, UTC), `level`, `logger` and `message`, and, when
it was logged while a job ran (the task's own logging included), the job's `job_id`,
`queue`, `task` and `attempt`, read from `current_job`. Secrets are redacted from the
message and the traceback, as everywhere else text leaves deadletter.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from deadletter.errors import ConfigError
from deadletter.redact import SECRETS_ONLY
from deadletter.worker.slots import current_job

FORMATS = ("text", "json")
LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="text, or json: one JSON object a line, with the job's id, queue, task and"
        " attempt where they apply (default: the log_format setting, text).",
    ),
]
# What a record may carry in `extra=` that goes into the JSON object as it is.
JOB_FIELDS = ("job_id", "queue", "task", "attempt")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": SECRETS_ONLY.redact_text(record.getMessage()),
        }
        entry.update(_job_fields(record))
        if record.exc_info:
            entry["exception"] = SECRETS_ONLY.redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _job_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The job the record is about: given with `extra=`, or the one running on this
    thread (or in this task's context) when it was logged."""
    given = {name: getattr(record, name) for name in JOB_FIELDS if hasattr(record, name)}
    if given:
        return given
    job = current_job.get(None)
    if job is None:
        return {}
    return {"job_id": job.id, "queue": job.queue, "task": job.task, "attempt": job.attempt}


def checked(log_format: str) -> str:
    if log_format not in FORMATS:
        raise ConfigError(f"log_format {log_format!r} is not one of {', '.join(FORMATS)}")
    return log_format


def configure(log_format: str, *, loggers: tuple[str, ...] = ("",)) -> None:
    """Send `loggers` (default: the root, so the tasks' own logging too) to stderr at
    INFO, in `log_format`; `text` keeps the shape uvicorn's lines have."""
    handler = logging.StreamHandler()
    if checked(log_format) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
