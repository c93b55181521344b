"""The composition root: settings in, a store, a task registry and workers out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from deadletter.classify import Rule, build_rules, rules_from_config
from deadletter.config import QueuePolicy, Settings, WorkerSettings, load_settings
from deadletter.errors import ConfigError, InvalidArgument, UnknownTask
from deadletter.model import LeasedJob, NewJob
from deadletter.redact import Redactors
from deadletter.schedules import DEFAULT_GRACE, Schedule, Scheduler, schedules_from_config
from deadletter.schedules import INTERVAL as SCHEDULE_INTERVAL
from deadletter.store import open_store
from deadletter.store.base import DEAD_LETTER_TASK, CallerConnection, Store
from deadletter.tasks import JobSpec, Task, TaskOptions
from deadletter.worker.loop import Worker
from deadletter.worker.prune import INTERVAL as PRUNE_INTERVAL
from deadletter.worker.prune import Pruner
from deadletter.worker.slots import Resolved

if TYPE_CHECKING:
    from deadletter.telemetry.otel import Tracing
    from deadletter.wiring import DlqComponents

P = ParamSpec("P")
R = TypeVar("R")


class App:
    """Tasks, the queues they run on, and the store that holds their jobs."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        rules: Sequence[Rule] = (),
        fail_fast: bool = False,
    ) -> None:
        """`rules` come before the configured ones (and the defaults, unless replaced).
        `fail_fast`: a database that cannot be reached is an error at once (see
        `open_store`), for tools that run once; workers keep trying."""
        self.settings = settings if settings is not None else load_settings()
        self.fail_fast = fail_fast
        configured = rules_from_config(self.settings.rules)
        self.rules = build_rules(
            (*rules, *configured), replace_defaults=self.settings.dlq.replace_default_rules
        )
        self.tasks: dict[str, Task[Any, Any]] = {}
        # Queues of jobs that another job system runs (deadletter.integrations): a worker
        # handles their dead letters and never runs their jobs.
        self.foreign_queues: list[str] = []
        self._periodic: list[Schedule] = []
        self._store: Store | None = None
        self._dlq: DlqComponents | None = None
        self._redactors: Redactors | None = None
        self._tracing: Tracing | None = None
        if self.settings.otel.enabled:
            # Imported only then: without the setting, tracing costs nothing.
            from deadletter.wiring import build_tracing

            self._tracing = build_tracing()

    @property
    def store(self) -> Store:
        """The store, opened on first use; the embedded SQLite default migrates itself."""
        if self._store is None:
            store = open_store(self.settings.database_url, fail_fast=self.fail_fast)
            if store.url.startswith("sqlite:"):
                store.migrate()
            self._store = store
        return self._store

    @property
    def dlq(self) -> DlqComponents:
        """The dead-letter handler and what it needs, built on first use."""
        if self._dlq is None:
            # Imported here: the handler pulls in boto3 and Apprise, which producers never need.
            from deadletter.wiring import DlqComponents

            self._dlq = DlqComponents.build(self.settings, self.store, self.rules, self.redactors)
        return self._dlq

    @property
    def redactors(self) -> Redactors:
        """Built once: the workers and the DLQ handler share them, and with them the memo
        of the tracebacks already redacted (redact.py), so that a dead letter's forensics
        do not redact again what its attempts did."""
        if self._redactors is None:
            settings = self.settings
            self._redactors = Redactors.from_config(
                settings.redact_patterns, settings.dlq.redact_keys
            )
        return self._redactors

    def close(self) -> None:
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- registering -----------------------------------------------------------

    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        max_retries: int | None = None,
        timeout: float | None = None,
        priority: int = 0,
        retry_backoff: float | None = None,
        retry_backoff_max: float | None = None,
        retry_jitter: bool | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """A decorator registering a sync or `async def` function as a task.

        `max_retries`, `retry_backoff` (the first retry's delay, in seconds),
        `retry_backoff_max` (the cap) and `retry_jitter` take the place of the queue's
        settings for this task's jobs; None keeps the queue's."""

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task_name = name or f"{fn.__module__}.{fn.__qualname__}"
            if task_name == DEAD_LETTER_TASK:
                # Its jobs would be taken for dead letters: a way to forge failures.
                raise ConfigError(
                    f"task name {task_name!r} is reserved for dead letters; choose another"
                )
            if task_name in self.tasks:
                raise ConfigError(f"task {task_name!r} is registered twice")
            _check_retry_settings(task_name, max_retries, retry_backoff, retry_backoff_max)
            options = TaskOptions(
                task_name,
                queue,
                max_retries,
                timeout,
                priority,
                retry_backoff=retry_backoff,
                retry_backoff_max=retry_backoff_max,
                retry_jitter=retry_jitter,
            )
            registered = Task(self, fn, options)
            self.tasks[task_name] = registered
            return registered

        return register

    def periodic(
        self,
        cron: str,
        *,
        name: str | None = None,
        timezone: str = "UTC",
        missed: str = "skip",
        grace_seconds: float = DEFAULT_GRACE,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Callable[[Task[P, R] | Callable[P, R]], Task[P, R]]:
        """A decorator enqueueing a task at each tick of `cron` (schedules.py): over
        `@app.task(...)`, or over a plain function, which it registers as a task with the
        defaults. `name` (default: the task's) names the schedule."""

        def register(target: Task[P, R] | Callable[P, R]) -> Task[P, R]:
            task = target if isinstance(target, Task) else self.task()(target)
            schedule = Schedule(
                name=name or task.name,
                cron=cron,
                task=task.name,
                queue=task.options.queue,
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                timezone=timezone,
                missed=missed,
                grace_seconds=grace_seconds,
            )
            if any(known.name == schedule.name for known in self._periodic):
                raise ConfigError(f"schedule {schedule.name!r} is registered twice")
            self._periodic.append(schedule)
            return task

        return register

    def schedules(self) -> list[Schedule]:
        """The schedules of `@periodic` and of the config's `[schedules]`; the queue of
        a configured one that names none is its task's, when the task is registered."""
        configured = schedules_from_config(self.settings.schedules)
        found = [*self._periodic]
        for schedule in configured:
            if any(known.name == schedule.name for known in found):
                raise ConfigError(f"schedule {schedule.name!r} is both configured and registered")
            task = self.tasks.get(schedule.task)
            if not schedule.queue and task is not None:
                schedule = replace(schedule, queue=task.options.queue)
            found.append(schedule)
        return found

    # -- producing ---------------------------------------------------------------

    def enqueue(self, spec: JobSpec, *, connection: CallerConnection | None = None) -> str:
        return self.enqueue_many([spec], connection=connection)[0]

    def enqueue_many(
        self, specs: Iterable[JobSpec], *, connection: CallerConnection | None = None
    ) -> list[str]:
        """Enqueue jobs in one transaction; returns their ids in order.

        With `connection` (the caller's own open sqlite3 or psycopg connection to this
        app's database), in the caller's transaction: the jobs exist if and only if the
        caller commits it; deadletter neither commits nor rolls it back."""
        jobs = self.new_jobs(specs)
        if connection is not None:
            return self.store.enqueue_in(connection, jobs)
        return self.store.enqueue(jobs) if jobs else []

    def new_job(self, spec: JobSpec) -> NewJob:
        return self.new_jobs([spec])[0]

    def new_jobs(self, specs: Iterable[JobSpec]) -> list[NewJob]:
        """The rows `specs` become: the queue's retries and dead-letter queue, the
        payload encoded once, the trace context in the labels."""
        now = time.time()
        limit = self.settings.payload_limit_bytes
        # A batch usually targets one queue: look its policy up once, not per job.
        policies: dict[str, QueuePolicy] = {}
        jobs = []
        for spec in specs:
            if spec.task == DEAD_LETTER_TASK:
                # Taken for a dead letter by the handler: a way to forge failures.
                raise InvalidArgument(
                    f"task {DEAD_LETTER_TASK!r} is reserved for the dead letters workers"
                    " write; enqueue a task of your own"
                )
            policy = policies.get(spec.queue)
            if policy is None:
                policy = policies[spec.queue] = self.policy(spec.queue)
            retries = policy.max_retries if spec.max_retries is None else spec.max_retries
            if self._tracing is not None:
                spec = replace(spec, labels=self._tracing.carry(spec.labels))
            jobs.append(
                spec.to_new_job(
                    now=now,
                    max_retries=retries,
                    dead_letter_queue=policy.dlq_for(spec.queue),
                    limit=limit,
                )
            )
        return jobs

    def policy(self, queue: str, task: str | None = None) -> QueuePolicy:
        """The retry policy of `queue`, with the settings of `task` (when it is
        registered here) in place of the queue's."""
        policy = self.settings.policy(queue)
        registered = self.tasks.get(task) if task is not None else None
        if registered is None:
            return policy
        options = registered.options
        return policy.for_task(
            max_retries=options.max_retries,
            backoff_base=options.retry_backoff,
            backoff_max=options.retry_backoff_max,
            jitter=options.retry_jitter,
        )

    # -- running -----------------------------------------------------------------

    def queues(self) -> list[str]:
        """The queues of the registered tasks, in registration order."""
        return list(dict.fromkeys(task.options.queue for task in self.tasks.values()))

    def add_foreign_queue(self, queue: str) -> None:
        """Jobs on `queue` run in another job system; only their dead letters run here."""
        if queue not in self.foreign_queues:
            self.foreign_queues.append(queue)

    def dead_letter_queues(self, queues: Sequence[str] | None = None) -> list[str]:
        return [self.policy(queue).dlq_for(queue) for queue in queues or self.queues()]

    def worker(
        self,
        *,
        queues: Sequence[str] | None = None,
        dlq: bool = True,
        dlq_only: bool = False,
        **overrides: Any,
    ) -> Worker:
        """A worker for `queues` (default: the tasks' queues) and, with `dlq`, their DLQs."""
        settings = self.settings.worker
        for key, value in overrides.items():
            settings = _replace_setting(settings, key, value)
        # Imported here, as in `dlq`: wiring pulls in boto3 and Apprise.
        from deadletter.wiring import observers_from

        named = list(queues or settings.queues or [*self.queues(), *self.foreign_queues])
        consumed = [queue for queue in named if queue not in self.foreign_queues]
        letters = self.dead_letter_queues(named) if dlq or dlq_only else []
        runs = letters if dlq_only else [*consumed, *letters]
        return Worker(
            store=self.store,
            queues=runs,
            resolve=self.resolve,
            policy=self.policy,
            rules=self.rules,
            # Secrets out of every attempt's message and traceback, before they are
            # written; personal data stays, for the operator's forensics.
            redactor=self.redactors.secrets,
            settings=settings,
            batch_tasks=frozenset({DEAD_LETTER_TASK}),
            letter_queues=frozenset(letters),
            takes_letters=self.dlq.handler.takes_letters if letters else lambda: True,
            observers=observers_from(self.settings, self.redactors),
            around=self._tracing.run if self._tracing else None,
            periodic=[
                *(self.dlq.periodic() if letters else []),
                # Every worker prunes what it runs: bounded storage with no extra process.
                (PRUNE_INTERVAL, Pruner(self.store, runs, self.policy)),
                *self._scheduler([] if dlq_only else consumed),
            ],
        )

    def _scheduler(self, queues: Sequence[str]) -> list[tuple[float, Scheduler]]:
        """The scheduler of the schedules whose jobs go to `queues`, if any: a worker
        schedules what it runs, so a scheduled job has a worker to run it."""
        schedules = self.schedules()
        unplaced = [s.name for s in schedules if not s.queue]
        if unplaced:
            raise ConfigError(
                f"schedule {unplaced[0]!r}: its task is not registered in this app;"
                " register it or give the schedule a queue"
            )
        mine = [schedule for schedule in schedules if schedule.queue in queues]
        return [(SCHEDULE_INTERVAL, Scheduler(self.store, mine, self._tick_job))] if mine else []

    def _tick_job(self, spec: JobSpec) -> NewJob:
        """A tick's job, with its task's own retries and priority as `Task.spec` gives."""
        task = self.tasks.get(spec.task)
        if task is not None:
            spec = replace(
                spec, max_retries=task.options.max_retries, priority=task.options.priority
            )
        return self.new_job(spec)

    def resolve(self, job: LeasedJob) -> Resolved:
        """How to run `job`: its function and timeout."""
        timeout = self.settings.worker.task_timeout
        if job.task == DEAD_LETTER_TASK:
            return Resolved(self.dlq.handler, timeout, batch=True)
        task = self.tasks.get(job.task)
        if task is None:
            raise UnknownTask(
                f"task {job.task!r} is not registered in this worker; registered tasks:"
                f" {', '.join(sorted(self.tasks)) or 'none'}"
            )
        return Resolved(task.function, task.options.timeout or timeout)


def _check_retry_settings(task: str, *numbers: float | None) -> None:
    """`max_retries`, `retry_backoff` and `retry_backoff_max` of `task`: 0 or more."""
    names = ("max_retries", "retry_backoff", "retry_backoff_max")
    for option, value in zip(names, numbers, strict=True):
        if value is not None and not (0 <= value < math.inf):
            raise ConfigError(f"{option} of task {task!r} must be 0 or more, not {value}")


def _replace_setting(settings: WorkerSettings, key: str, value: Any) -> WorkerSettings:
    if not hasattr(settings, key):
        raise ConfigError(f"unknown worker setting {key!r}")
    return replace(settings, **{key: value})
