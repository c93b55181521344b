"""deadletter: background jobs in which no failed job is ever lost."""

from deadletter.app import App
from deadletter.config import QueuePolicy, Settings, WorkerSettings, load_settings
from deadletter.errors import (
    ConfigError,
    DeadletterError,
    InvalidInput,
    JobTimeout,
    PayloadError,
    PermanentFailure,
    Retry,
    WorkerLost,
)
from deadletter.model import ErrorClass, Job, JobState
from deadletter.tasks import JobSpec, Task
from deadletter.worker.loop import Worker
from deadletter.worker.slots import current_job

__all__ = [
    "App",
    "ConfigError",
    "DeadletterError",
    "ErrorClass",
    "InvalidInput",
    "Job",
    "JobSpec",
    "JobState",
    "JobTimeout",
    "PayloadError",
    "PermanentFailure",
    "QueuePolicy",
    "Retry",
    "Settings",
    "Task",
    "Worker",
    "WorkerLost",
    "WorkerSettings",
    "current_job",
    "load_settings",
]
