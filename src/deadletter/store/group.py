"""Group commit: concurrent enqueues of one process share one durable commit.

A commit's cost is its flush to disk (SQLite's fsync, PostgreSQL's WAL flush), the
same for one row as for a hundred. The first caller commits at once, alone: a single
producer waits for nothing but its own commit. Callers arriving while a commit is under
way queue, and when it ends one of them (the leader) writes every queued caller's jobs
in one transaction. Each call returns once its own jobs are durably committed, or
raises what went wrong with them:

- the database away (StoreUnavailable): every caller of the batch gets that error, as
  each would alone;
- any other error: a row of the batch may be bad, so each caller writes its own jobs
  again alone (ids are made by the producer and a conflict inserts nothing, so a row
  the failed batch wrote after all is not doubled): only the bad row's caller fails,
  and a row the database refuses is named in the error (InvalidArgument).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from deadletter.errors import InvalidArgument, StoreUnavailable
from deadletter.model import NewJob

Write = Callable[[Sequence[NewJob]], list[str]]


class _Call:
    """One caller's jobs and, once settled, its outcome."""

    __slots__ = ("alone", "error", "ids", "jobs")

    def __init__(self, jobs: Sequence[NewJob]) -> None:
        self.jobs = jobs
        self.ids: list[str] | None = None
        self.error: BaseException | None = None
        self.alone = False  # its batch failed: write its jobs again, alone

    @property
    def settled(self) -> bool:
        return self.ids is not None or self.error is not None or self.alone


class GroupCommit:
    """Batches the concurrent calls of `write` (insert jobs in one transaction, commit,
    return their ids) into one call per commit. `refused`: the driver's errors that
    mean the database refused a row's values (a number out of range)."""

    def __init__(self, write: Write, *, refused: tuple[type[Exception], ...]) -> None:
        self._write = write
        self._refused = refused
        self._turn = threading.Condition(threading.Lock())
        self._queue: list[_Call] = []
        self._committing = False
        self.commits = 0  # transactions committed, batches and callers alone

    @property
    def queued(self) -> int:
        """Callers waiting for the commit under way to end."""
        with self._turn:
            return len(self._queue)

    @property
    def committing(self) -> bool:
        with self._turn:
            return self._committing

    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        call = _Call(jobs)
        with self._turn:
            self._queue.append(call)
            if self._committing:
                self._wait(call)
            batch = None
            if not call.settled:  # no commit under way: lead the callers queued
                batch, self._queue = self._queue, []
                self._committing = True
        if batch is not None:
            self._lead(batch)
        return self._outcome(call)

    def _wait(self, call: _Call) -> None:
        """Wait, holding the turn, until `call` is settled or may lead the next commit."""
        try:
            while self._committing and not call.settled:
                self._turn.wait()
        except BaseException:
            # Interrupted (Ctrl-C): the jobs are not written for a caller that is gone,
            # unless a leader has taken them already.
            if call in self._queue:
                self._queue.remove(call)
            raise

    def _lead(self, batch: list[_Call]) -> None:
        committed = False
        try:
            committed = self._commit(batch)
        finally:
            with self._turn:
                self._committing = False
                self.commits += committed
                if len(batch) > 1 or self._queue:  # nobody waits on a lone caller
                    self._turn.notify_all()

    def _commit(self, batch: list[_Call]) -> bool:
        """Write the batch's jobs in one transaction and settle its calls; whether it
        committed."""
        try:
            if len(batch) == 1:
                batch[0].ids = self._write(batch[0].jobs)
                return True
            ids = self._write([job for call in batch for job in call.jobs])
        except StoreUnavailable as exc:
            for call in batch:
                call.error = exc if len(batch) == 1 else _own_copy(exc)
        except Exception as exc:
            for call in batch:
                call.alone, call.error = len(batch) > 1, exc if len(batch) == 1 else None
        else:
            start = 0
            for call in batch:
                call.ids = ids[start : start + len(call.jobs)]
                start += len(call.jobs)
            return True
        finally:
            # A leader interrupted in its write (KeyboardInterrupt): its followers write
            # their own jobs, none waits for a batch that will not come.
            for call in batch:
                call.alone = call.alone or not call.settled
        return False

    def _outcome(self, call: _Call) -> list[str]:
        if call.alone:
            return self._write_alone(call.jobs)
        if call.error is not None:
            self._raise(call.jobs, call.error)
        assert call.ids is not None  # settled
        return call.ids

    def _write_alone(self, jobs: Sequence[NewJob]) -> list[str]:
        try:
            ids = self._write(jobs)
        except Exception as exc:
            self._raise(jobs, exc)
        with self._turn:
            self.commits += 1
        return ids

    def _raise(self, jobs: Sequence[NewJob], exc: BaseException) -> NoReturn:
        """Raise `exc`; a row the database refused as an error naming its job."""
        if isinstance(exc, self._refused):
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise InvalidArgument(f"the database refused {_described(jobs)}: {reason}") from exc
        raise exc


def _own_copy(exc: StoreUnavailable) -> StoreUnavailable:
    """The error of a batch for one of its callers: each raises its own, an exception's
    traceback growing as it is raised."""
    copy = StoreUnavailable(str(exc))
    copy.__cause__ = exc
    return copy


def _described(jobs: Sequence[NewJob]) -> str:
    if len(jobs) == 1:
        job = jobs[0]
        return f"job {job.id} (task {job.task}, queue {job.queue})"
    tasks = ", ".join(sorted({job.task for job in jobs}))
    return f"{len(jobs)} jobs (tasks {tasks}), none enqueued"
