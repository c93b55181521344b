"""Execution slots: a fixed set of threads that run leased jobs, with timeouts.

Sync tasks run on the slot threads; `async def` tasks run on one shared event
loop and a slot thread waits for each, so "concurrency" means the same thing for
both. A sync task that overruns its timeout gets `JobTimeout` raised inside its
thread (CPython's async-exception hook): it lands at the next Python bytecode,
so a task blocked inside a C call is interrupted only when that call returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import inspect
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from deadletter.errors import JobTimeout, NotTaken, StoreUnavailable
from deadletter.model import LeasedJob
from deadletter.worker.retry import Failure
from deadletter.worker.tracebacks import format_failure

TRACEBACK_LIMIT = 8000

# A context a run happens in, given its job (telemetry/otel.py: a span).
Around = Callable[[LeasedJob], AbstractContextManager[None]]
# Record that jobs begin, right before they start; the ids of those not to start.
Begin = Callable[[list[LeasedJob]], set[str]]
# Told that the tasks of jobs that began have ended, before their results are given.
Ended = Callable[[list[LeasedJob]], None]

current_job: contextvars.ContextVar[LeasedJob] = contextvars.ContextVar("deadletter_current_job")

TaskFunction = Callable[..., Any]
BatchFunction = Callable[[Sequence[LeasedJob]], Mapping[str, BaseException]]


@dataclass(frozen=True, slots=True)
class Resolved:
    """How to run a job: its function and timeout; a batch function takes the whole batch
    of its jobs and returns the failures by job id."""

    function: TaskFunction
    timeout: float
    batch: bool = False


Resolve = Callable[[LeasedJob], Resolved]


@dataclass(frozen=True, slots=True)
class Finished:
    """A job done; or, with `started` False, one held back unstarted (its queue was
    paused after it was leased, or its batch task did not take it: `NotTaken`), whose
    lease is to be given back uncharged. `cancelled`: the run was told to stop before
    it ended (read as it ended: a run that ended first keeps its outcome)."""

    job: LeasedJob
    failure: Failure | None
    ended_at: float
    started: bool = True
    cancelled: bool = False


@dataclass(slots=True)
class _Running:
    job: LeasedJob
    deadline: float
    started_at: float
    interrupted: bool = False


class Slots:
    """`size` threads taking jobs from an inbox and putting `Finished` into `results`."""

    def __init__(
        self,
        size: int,
        resolve: Resolve,
        worker: str,
        hold: Callable[[LeasedJob], bool] = lambda job: False,
        begin: Begin = lambda jobs: set(),
        ended: Ended = lambda jobs: None,
        around: Around | None = None,
    ) -> None:
        """`hold`: whether a job waiting for a slot is not to be started after all;
        `begin`: called right before jobs start, the ids of those not to start (their
        lease is lost); `ended`: called once their tasks end; `around`: a context each
        run of a single job runs in (a trace's span)."""
        self.results: queue.SimpleQueue[Finished] = queue.SimpleQueue()
        self._inbox: queue.SimpleQueue[list[LeasedJob] | None] = queue.SimpleQueue()
        self._resolve = resolve
        self._worker = worker
        self._hold = hold
        self._begin = begin
        self._ended = ended
        self._around = around
        self._running: dict[int, _Running] = {}
        # The async tasks running now, by job id: a lost lease or a cancel cancels its task.
        self._futures: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads = [
            threading.Thread(target=self._serve, name=f"deadletter-slot-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, jobs: list[LeasedJob]) -> None:
        """Run one job, or a batch of jobs of one batch task."""
        self._inbox.put(jobs)

    def unstarted(self) -> list[LeasedJob]:
        """Take back the jobs still waiting for a slot (a stop gives them back at once)."""
        jobs: list[LeasedJob] = []
        while True:
            try:
                unit = self._inbox.get_nowait()
            except queue.Empty:
                return jobs
            jobs += unit or []

    def running(self) -> list[tuple[LeasedJob, float]]:
        """The jobs the slots run now (the first of a batch), each with its start time."""
        with self._lock:
            return [(run.job, run.started_at) for run in self._running.values()]

    def cancel(self, job_id: str) -> None:
        """Cancel the async task of `job_id` if one runs (its lease was lost, or an
        operator cancelled the job); a sync task cannot be stopped safely and sees
        `current_job().lease_lost` or `.cancel_requested` instead."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.cancel()

    def interrupt_overdue(self) -> int:
        """Raise JobTimeout in threads whose job is past its deadline; return how many."""
        now = time.monotonic()
        with self._lock:
            overdue = [
                (ident, run)
                for ident, run in self._running.items()
                if run.deadline < now and not run.interrupted
            ]
            for ident, run in overdue:
                run.interrupted = True
                _raise_in_thread(ident, JobTimeout)
        return len(overdue)

    def shutdown(self) -> None:
        for _ in self._threads:
            self._inbox.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self) -> None:
        ident = threading.get_ident()
        while (jobs := self._inbox.get()) is not None:
            for item in self._run(ident, jobs):
                self.results.put(item)

    def _run(self, ident: int, jobs: list[LeasedJob]) -> list[Finished]:
        """Run `jobs` unless held back; each of them finished, or unstarted if held."""
        held: list[LeasedJob] = []
        kept = self._unheld(jobs, held)
        lost = self._begun(kept)
        held += [job for job in kept if job.id in lost]
        # Asked again once begun: the round trip may have brought the lease near its
        # end, and what follows is the task's first line.
        jobs = self._unheld([job for job in kept if job.id not in lost], held)
        unstarted = [Finished(job, None, time.time(), started=False) for job in held]
        if not jobs:
            return unstarted
        started = time.time()
        try:
            failures = self._execute(ident, jobs, started)
        except JobTimeout as exc:
            # The interrupt arrived after the task returned but before bookkeeping.
            failures = dict.fromkeys((job.id for job in jobs), self._failure(exc, started))
        finally:
            with self._lock:
                self._running.pop(ident, None)
        ended = time.time()
        self._ended(jobs)
        return unstarted + [self._finished(job, failures.get(job.id), ended) for job in jobs]

    def _unheld(self, jobs: list[LeasedJob], held: list[LeasedJob]) -> list[LeasedJob]:
        """The jobs not to hold back; those to hold back are added to `held`."""
        kept: list[LeasedJob] = []
        for job in jobs:
            (held if self._hold(job) else kept).append(job)
        return kept

    def _begun(self, jobs: list[LeasedJob]) -> set[str]:
        """`begin` for `jobs`: the ids not to start. A store that cannot record it (away)
        starts none of them: they are held back, to be given back or tried again."""
        if not jobs:
            return set()
        try:
            return self._begin(jobs)
        except StoreUnavailable:
            return {job.id for job in jobs}

    @staticmethod
    def _finished(job: LeasedJob, failure: Failure | None, ended: float) -> Finished:
        if failure is not None and isinstance(failure.exception, NotTaken):
            return Finished(job, None, ended, started=False)
        return Finished(job, failure, ended, cancelled=job.cancel_requested)

    def _execute(
        self, ident: int, jobs: list[LeasedJob], started: float
    ) -> dict[str, Failure | None]:
        try:
            resolved = self._resolve(jobs[0])
            with self._lock:
                deadline = time.monotonic() + resolved.timeout
                self._running[ident] = _Running(jobs[0], deadline, started)
            if resolved.batch:
                failed = resolved.function(jobs)
                return {job_id: self._failure(exc, started) for job_id, exc in failed.items()}
            token = current_job.set(jobs[0])
            try:
                with self._around(jobs[0]) if self._around else nullcontext():
                    self._call(resolved.function, jobs[0], resolved.timeout)
            finally:
                current_job.reset(token)
        except Exception as exc:  # every failure of a task is recorded, whatever its type
            return dict.fromkeys((job.id for job in jobs), self._failure(exc, started))
        return {}

    def _call(self, function: TaskFunction, job: LeasedJob, timeout: float) -> None:
        args = job.payload.get("args", [])
        kwargs = job.payload.get("kwargs", {})
        if not inspect.iscoroutinefunction(function):
            function(*args, **kwargs)
            return
        future = asyncio.run_coroutine_threadsafe(
            _with_job(job, function(*args, **kwargs)), self._event_loop()
        )
        with self._lock:
            self._futures[job.id] = future
        if job.lease_lost or job.cancel_requested:  # told before its future was known
            future.cancel()
        try:
            future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise JobTimeout(f"task {job.task} ran past its timeout of {timeout:g}s") from exc
        finally:
            with self._lock:
                # A run of the same job under a newer lease may have begun meanwhile.
                if self._futures.get(job.id) is future:
                    del self._futures[job.id]

    def _failure(self, exc: BaseException, started: float) -> Failure:
        text = format_failure(exc)
        return Failure(exc, text[-TRACEBACK_LIMIT:], started, time.time(), self._worker)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="deadletter-async", daemon=True
                ).start()
                self._loop = loop
            return self._loop


async def _with_job(job: LeasedJob, coroutine: Coroutine[Any, Any, Any]) -> Any:
    current_job.set(job)
    return await coroutine


def _raise_in_thread(ident: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
