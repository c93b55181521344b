"""The worker: lease a batch, run it on the slots, decide, persist, repeat.

One thread owns every state change; slot threads only run task code. Outcomes are
written in batches, on PostgreSQL while the next batch is leased and run
(worker/writes.py), so a crash between a task's end and its batch's commit re-runs that
task once its lease expires (at-least-once).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from deadletter.classify import Rule
from deadletter.config import PolicyOf, WorkerSettings
from deadletter.errors import InvalidArgument, StoreUnavailable, WorkerLost
from deadletter.model import Lease, LeasedJob
from deadletter.redact import Redactor
from deadletter.store import cancel
from deadletter.store.base import (
    DEAD_LETTER_TASK,
    JobOutcome,
    LostLease,
    Retrying,
    Store,
    Succeeded,
)
from deadletter.store.fleet import RunningJob, WorkerPresence
from deadletter.worker.begins import Begins
from deadletter.worker.observe import AttemptObserver, tell
from deadletter.worker.outage import Outage
from deadletter.worker.rates import QueueRates
from deadletter.worker.retry import Failure, decide
from deadletter.worker.slots import Around, Finished, Resolve, Slots
from deadletter.worker.writes import OutcomeWriter

log = logging.getLogger("deadletter.worker")

RECLAIM_EVERY = 1.0
# How often the worker reads which queues are paused, to hold back the jobs of a paused
# queue that it leased ahead and has not started (the lease itself skips them at once).
PAUSES_EVERY = 0.5
# A job is not started this close to its lease's expiry: the run would begin on a lease
# that another worker may take over before the task has done anything (issue 7).
START_MARGIN = 0.05
# A worker silent this long is deleted from the table of workers by the next one to beat.
FORGET_WORKERS_AFTER = 86_400.0
# Finished jobs are written together; this bounds how long a result waits for company.
FLUSH_INTERVAL = 0.05
# Up to this share of each lease goes to dead letters before any other job, so a letter
# does not wait behind the whole backlog, and the main queues still get the rest.
LETTER_SHARE = 0.25


Periodic = tuple[float, Callable[[], object]]


@dataclass(slots=True)
class WorkerStats:
    """Outcomes of jobs, and apart from them of dead letters (the DLQ handler's own
    work): a letter handled is not a job that succeeded."""

    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    fenced: int = 0
    reclaimed: int = 0
    cancelled: int = 0
    letters_handled: int = 0
    letters_retried: int = 0
    letters_parked: int = 0

    def count(
        self, outcomes: Sequence[JobOutcome], applied: set[str], letters: frozenset[str]
    ) -> None:
        """`letters`: the ids among `outcomes` that are dead letters."""
        for outcome in outcomes:
            job_id = outcome.lease.job_id
            if job_id not in applied:
                self.fenced += 1
            elif job_id in letters:
                self._count_letter(outcome)
            elif isinstance(outcome, Succeeded):
                self.succeeded += 1
            elif isinstance(outcome, Retrying):
                self.retried += 1
            else:
                self.dead_lettered += 1

    def _count_letter(self, outcome: JobOutcome) -> None:
        if isinstance(outcome, Succeeded):
            self.letters_handled += 1
        elif isinstance(outcome, Retrying):
            self.letters_retried += 1
        else:
            self.letters_parked += 1


class StopFlag(threading.Event):
    """An Event that a signal handler may set.

    A handler runs on the main thread between two of its steps, perhaps inside this
    very event's `wait` while that holds the event's lock: a plain Event's `set` then
    waits for a lock its own thread holds, and the worker hangs for good (seen: a DLQ
    worker process's main thread stuck in `set` from its SIGTERM handler, inside
    SqliteStore.wait_for_work's wait on the stop). With a reentrant lock the handler's
    `set` goes through; a wait it interrupted before the wait began to sleep misses the
    wake-up and returns at its timeout, which every wait on a stop has."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition(threading.RLock())


@dataclass(slots=True)
class _Clocks:
    heartbeat: float = 0.0
    reclaim: float = 0.0
    pauses: float = 0.0
    first_unsaved: float = 0.0


class Worker:
    """Runs jobs of `queues` until stopped (or, with `burst`, until nothing is pending)."""

    def __init__(
        self,
        *,
        store: Store,
        queues: Sequence[str],
        resolve: Resolve,
        policy: PolicyOf,
        rules: Sequence[Rule],
        redactor: Redactor,
        settings: WorkerSettings,
        batch_tasks: frozenset[str] = frozenset(),
        periodic: Sequence[Periodic] = (),
        letter_queues: frozenset[str] = frozenset(),
        takes_letters: Callable[[], bool] = lambda: True,
        observers: Sequence[AttemptObserver] = (),
        around: Around | None = None,
        name: str | None = None,
        seed: int | None = None,
    ) -> None:
        if not queues:
            raise InvalidArgument("a worker needs at least one queue to consume")
        self.store = store
        self.queues = tuple(queues)
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self) & 0xFFFF:x}"
        self.stats = WorkerStats()
        self._resolve = resolve
        self._batch_tasks = batch_tasks
        self._periodic = (*periodic, (settings.heartbeat_seconds, self._beat))
        self._policy = policy
        # While the DLQ handler cannot take letters (a component it writes to is down),
        # its queues are left out of the lease: the letters wait, uncharged.
        self._letter_queues = letter_queues
        self._takes_letters = takes_letters
        self._rules = tuple(rules)
        self._redactor = redactor
        self._observers = tuple(observers)
        self._around = around
        self._rng = random.Random(seed)
        # Set by stop(), which a signal handler calls.
        self._stop = StopFlag()
        self._stop_now = StopFlag()
        # Leased and not yet persisted, whether waiting for a slot, running, finished or
        # being written.
        self._inflight: dict[str, LeasedJob] = {}
        # Held back unstarted and not given back yet (the store was away): handed to the
        # slots again, which start them or hold them back again, once it answers.
        self._again: list[LeasedJob] = []
        self._unsaved: list[Finished] = []
        self._writer = OutcomeWriter(store)
        # When each in-flight lease expires, as last leased or extended: a slot does not
        # start a job past it. Leases found lost at heartbeat, so as to drop the jobs not
        # started yet and to log each loss once.
        self._expires: dict[str, float] = {}
        self._lost: set[str] = set()
        self._clocks = _Clocks()
        # Queues paused by an operator (store/fleet.py), as last read; the slots see it.
        self._paused: frozenset[str] = frozenset()
        self._slots: Slots | None = None
        self._begins = Begins(store)
        self._started_at = time.time()
        self._rates = QueueRates(self._started_at)
        self._outage = Outage()

    def stop(self, *, now: bool = False) -> None:
        """Ask the worker to finish in-flight jobs and return; with `now`, or when asked
        again, to give their leases back at once instead: the jobs run again, uncharged,
        on the next worker. Safe from a signal handler."""
        if now:
            self._stop_now.set()
        self._stop.set()

    def running(self) -> int:
        """Jobs leased and not finished yet: what a stop waits for (the slots start none
        once stopping: they hold them back, to be given back)."""
        return self._in_hand() - len(self._unsaved)

    def _in_hand(self) -> int:
        """Jobs leased whose outcomes are not on their way to the store yet."""
        return len(self._inflight) - len(self._writer.job_ids)

    def run(self, *, burst: bool = False) -> WorkerStats:
        slots = Slots(
            self.settings.concurrency,
            self._resolve,
            self.name,
            hold=self._is_held,
            begin=self._begin,
            ended=self._ended,
            around=self._around,
        )
        self._slots = slots
        self._begins.start()
        background = threading.Thread(target=self._run_periodic, name="deadletter-periodic")
        background.start()
        # Leases taken from now on are the ones to extend, a third of lease_seconds on.
        self._clocks.heartbeat = time.time()
        try:
            while not self._stop.is_set():
                try:
                    if self._turn(slots, burst=burst):
                        break
                except StoreUnavailable as exc:
                    # Jobs keep running on the slots; their outcomes wait in memory.
                    self._outage.failed(exc, self._stop)
            self._shutdown(slots)
        finally:
            slots.shutdown()
            self._writer.close()
            self._begins.close()
            self._stop.set()
            background.join()
            self._leave()
        return self.stats

    def _leasable(self) -> tuple[str, ...]:
        if self._takes_letters():
            return self.queues
        return tuple(queue for queue in self.queues if queue not in self._letter_queues)

    def _wait_for_work(self) -> None:
        queues = self._leasable()
        if queues:
            self.store.wait_for_work(queues, self.settings.poll_interval, self._stop)
        else:
            self._stop.wait(self.settings.poll_interval)

    def _turn(self, slots: Slots, *, burst: bool) -> bool:
        """One turn of the loop; return whether a burst run is done."""
        if self._outage.since is not None:
            # A read first: a turn may touch the store only now and then, and the end of
            # an outage is announced when the store answered, not when it was not asked.
            self._paused = frozenset(self.store.paused_queues())
        busy = self._step(slots)
        # Over only once outcomes are written: a full disk still serves reads.
        if not self._unsaved and not self._writer.job_ids:
            self._outage.succeeded()
        if busy:
            return False
        if burst:
            return self._drained()
        self._wait_for_work()
        return False

    def _run_periodic(self) -> None:
        """Side duties (delivering alerts, checking thresholds), off the job path."""
        due = [0.0] * len(self._periodic)
        while not self._stop.wait(0.1):
            for index, (interval, duty) in enumerate(self._periodic):
                if time.monotonic() >= due[index]:
                    due[index] = time.monotonic() + interval
                    try:
                        duty()
                    except StoreUnavailable:  # the job loop logs the outage, once
                        pass
                    except Exception:  # a failing duty is logged and tried again later
                        log.exception("periodic duty %r failed", duty)

    # -- one turn of the loop ----------------------------------------------------

    def _step(self, slots: Slots) -> bool:
        """Lease, dispatch, collect, persist; return whether to turn again at once: jobs
        are in hand, or outcomes were just written. After a write the queue is not known
        to be empty: more jobs may wait beyond the last batch, and a retry without
        backoff is due at once; asking whether work is left, or waiting a poll interval,
        is for when a turn found nothing."""
        now = time.time()
        if now - self._clocks.reclaim >= RECLAIM_EVERY:
            self._clocks.reclaim = now
            self.reclaim_expired()
        if now - self._clocks.pauses >= PAUSES_EVERY:
            self._clocks.pauses = now
            self._paused = frozenset(self.store.paused_queues())
        leased = self._refill(now)
        again, self._again = self._again, []
        self._dispatch(slots, again + leased)
        slots.interrupt_overdue()
        self._collect(_drain(slots, 0.0 if leased or not self.running() else FLUSH_INTERVAL))
        # With nothing else to do, wait for the outcomes on their way, a poll interval at
        # most: a job enqueued meanwhile is leased on the next turn, however long the
        # write takes (a row lock held by someone else, say).
        idle = not leased and not self.running() and not self._unsaved
        self._settle(wait=self.settings.poll_interval if idle else 0.0)
        wrote = bool(self._unsaved) and self._flush_due()
        if wrote:
            self._persist()
        self._lose_begun()
        self._heartbeat()
        return wrote or bool(self._inflight)

    def _dispatch(self, slots: Slots, leased: list[LeasedJob]) -> None:
        """One submission per job, except jobs of a batch task, which go together."""
        batches: dict[str, list[LeasedJob]] = {}
        for job in leased:
            if job.task in self._batch_tasks:
                batches.setdefault(job.task, []).append(job)
            else:
                slots.submit([job])
        for jobs in batches.values():
            slots.submit(jobs)

    def _begin(self, jobs: list[LeasedJob]) -> set[str]:
        """On a slot, right before it starts `jobs`: record that their attempts begin, so
        that a lost worker is charged only for what it ran (a job waiting for a slot is
        not charged); the ids whose lease is no longer ours. Begins are written in the
        background (worker/begins.py), but for a job a worker was lost holding before:
        its begin is written before its task starts, so that it is charged if it kills
        this worker too."""
        lost: set[str] = set()
        if again := [job.lease for job in jobs if job.worker_losses]:
            lost = {lease.job_id for lease in self.store.begin(again, now=time.time())}
        for job in jobs:
            if not job.worker_losses:
                self._begins.record(job.lease)
        return lost

    def _ended(self, jobs: list[LeasedJob]) -> None:
        """On a slot, once the tasks of `jobs` ended: begins not written yet are not needed
        (worker/begins.py)."""
        for job in jobs:
            self._begins.ended(job.lease)

    def _collect(self, finished: list[Finished]) -> None:
        """Keep the outcomes of jobs that ran, then give back the jobs held unstarted:
        a store that is away must lose neither."""
        done = [item for item in finished if item.started]
        if done and not self._unsaved:
            self._clocks.first_unsaved = time.monotonic()
        self._unsaved.extend(done)
        held = [item.job for item in finished if not item.started]
        if held:
            try:
                self._give_back(held)
            except StoreUnavailable:
                self._again += held
                raise

    def _flush_due(self) -> bool:
        everything_done = len(self._unsaved) == self._in_hand()
        batch_full = len(self._unsaved) >= self.settings.batch_size // 2
        waited = time.monotonic() - self._clocks.first_unsaved >= FLUSH_INTERVAL
        return everything_done or batch_full or waited

    def _refill(self, now: float) -> list[LeasedJob]:
        """Lease at half capacity, so that leases and writes go in batches, not one by one.
        A dead letter that the batch on its way writes is waited for, to be in this lease
        ahead of the backlog (LETTER_SHARE), not in the one after it."""
        if self._in_hand() > self.settings.batch_size // 2:
            return []
        if self._letter_queues and self._writer.writes_letters:
            self._settle(wait=None)
        return self._lease(now)

    def _lease(self, now: float) -> list[LeasedJob]:
        room = self.settings.batch_size - self._in_hand()
        queues = self._leasable()
        if room <= 0 or not queues:
            return []
        leased = self.store.lease(
            queues,
            limit=room,
            worker=self.name,
            now=now,
            lease_seconds=self.settings.lease_seconds,
            letters=max(int(room * LETTER_SHARE), 1),
        )
        writing = self._writer.job_ids
        for job in leased:
            # A run whose outcome is being written has ended: nothing to tell it.
            if (older := self._inflight.get(job.id)) is not None and job.id not in writing:
                self._superseded(older)
        self._inflight.update((job.id, job) for job in leased)
        self._expires.update((job.id, job.lease_expires_at) for job in leased)
        return leased

    def _persist(self) -> None:
        """Hand the unsaved outcomes to the writer, once the batch before is settled; settle
        them at once if written already (SQLite writes inline)."""
        self._remove_cancelled()
        if not self._unsaved:
            return
        self._settle(wait=None)
        finished, self._unsaved = self._unsaved, []
        self._writer.hand(finished, [self._outcome(item) for item in finished], time.time())
        self._settle(wait=0.0)

    def _settle(self, *, wait: float | None) -> None:
        """Count, tell and forget the jobs of the batch written, waiting up to `wait`
        seconds for it (None: until it is written); a batch that failed goes back to the
        unsaved outcomes, to be written once the store is back (fencing drops those whose
        lease was taken over meanwhile)."""
        handed = self._writer.take(wait=wait)
        if handed is None:
            return
        finished = handed.finished
        try:
            applied = handed.applied.result()
        except Exception:
            if not self._unsaved:
                self._clocks.first_unsaved = time.monotonic()
            self._unsaved = finished + self._unsaved
            raise
        jobs = [item.job for item in finished]
        self._tally(handed.outcomes, applied, jobs)
        tell(self._observers, jobs, [item.failure for item in finished], handed.outcomes, applied)
        for item in finished:
            self._forget(item.job)

    def _save_all(self) -> None:
        """Write every outcome in hand and wait for it (at shutdown): `_persist` settles the
        batch on its way first, if it has outcomes to hand."""
        self._persist()
        self._settle(wait=None)

    def _remove_cancelled(self) -> None:
        """Remove the jobs whose run ended after it was told to stop (an operator's cancel,
        ops/cancel.py), whether it raised or returned: cancelled, not failed or retried."""
        stopped = [item for item in self._unsaved if item.cancelled]
        if not stopped:
            return
        with self.store.transaction() as execute:
            removed = sum(cancel.remove_stopped(execute, item.job.lease) for item in stopped)
        # Written: off the unsaved list, so that a retry after an outage does not redo it.
        self._unsaved = [item for item in self._unsaved if not item.cancelled]
        self.stats.cancelled += removed
        self.stats.fenced += len(stopped) - removed
        for item in stopped:
            self._forget(item.job)
        log.info("cancelled %d jobs asked to stop", removed)

    def _forget(self, job: LeasedJob) -> None:
        """Drop `job` from the jobs in hand, unless this worker leased it again since:
        then the run that ended was under an older lease, and the newer one is kept (and
        extended)."""
        held = self._inflight.get(job.id)
        if held is not None and held.token != job.token:
            return
        self._inflight.pop(job.id, None)
        self._expires.pop(job.id, None)
        self._lost.discard(job.id)

    def _outcome(self, item: Finished) -> JobOutcome:
        if item.failure is None:
            return Succeeded(item.job.lease, item.ended_at)
        return self._decide(item.job, item.failure)

    def _decide(self, job: LeasedJob, failure: Failure) -> JobOutcome:
        return decide(
            job,
            failure,
            policy=self._policy(job.queue, job.task),
            rules=self._rules,
            dlq_max_retries=self._policy(job.dead_letter_queue).max_retries,
            rng=self._rng,
            redactor=self._redactor,
        )

    # -- leases of others, and of our own --------------------------------------

    def reclaim_expired(self) -> None:
        """Turn expired leases of dead workers into failed attempts."""
        now = time.time()
        lost = self.store.reclaim_expired(
            limit=self.settings.batch_size,
            now=now,
            lease_seconds=self.settings.lease_seconds,
        )
        if lost:
            jobs = [item.job for item in lost]
            failures = [_lost_failure(item, now) for item in lost]
            outcomes = [self._decide(job, f) for job, f in zip(jobs, failures, strict=True)]
            applied = self.store.finish(outcomes, now=now)
            self.stats.reclaimed += len(applied)
            self._tally(outcomes, applied, jobs)
            tell(self._observers, jobs, failures, outcomes, applied)
            log.warning("reclaimed %d jobs from lost workers", len(applied))

    def _tally(
        self, outcomes: Sequence[JobOutcome], applied: set[str], jobs: Sequence[LeasedJob]
    ) -> None:
        """Count written outcomes: in the stats, and by queue for the throughput."""
        self.stats.count(outcomes, applied, _letters(jobs))
        self._rates.add(
            (job.queue, isinstance(outcome, Succeeded))
            for job, outcome in zip(jobs, outcomes, strict=True)
            if job.id in applied
        )

    def _heartbeat(self) -> None:
        now = time.time()
        if not self._inflight or now - self._clocks.heartbeat < self.settings.lease_seconds / 3:
            return
        self._clocks.heartbeat = now
        # An outcome being written ends its lease: extended meanwhile, it would seem lost.
        skip = self._lost | self._writer.job_ids
        leases = [job.lease for job in self._inflight.values() if job.id not in skip]
        until = now + self.settings.lease_seconds
        lost = {lease.job_id for lease in self.store.extend(leases, until=until)}
        for lease in leases:
            if lease.job_id in lost:
                self._lose(lease)
            else:
                self._expires[lease.job_id] = until
        self._tell_cancelled([lease for lease in leases if lease.job_id not in lost])

    def _lose(self, lease: Lease) -> None:
        """Someone else owns the job now: not started yet, its slot drops it; running, it
        is told (an async task cancelled), its outcome fenced out. Logged once (the
        lease is not extended again)."""
        self._lost.add(lease.job_id)
        self._tell_lost(self._inflight[lease.job_id])

    def _superseded(self, older: LeasedJob) -> None:
        """This worker leased a job again while a run of it under an older lease has not
        ended (that lease was given back or reclaimed meanwhile, and the heartbeat had not
        seen it yet): the older lease is lost for sure, and its run told so, as `_lose`
        does; the newer lease is the one in hand from now on."""
        if older.id not in self._lost:
            self._tell_lost(older)
        self._lost.discard(older.id)

    def _tell_lost(self, job: LeasedJob) -> None:
        job.lose_lease()
        if self._slots is not None:
            self._slots.cancel(job.id)
        log.warning("lease on job %s was lost", job.id)

    def _lose_begun(self) -> None:
        """The leases the begins writer found no longer ours, of jobs still in hand under
        that lease (a job whose outcome was written since has simply ended)."""
        while not self._begins.lost.empty():
            lease = self._begins.lost.get_nowait()
            job = self._inflight.get(lease.job_id)
            # A job whose outcome is being written has ended: that write is fenced.
            ended_or_lost = lease.job_id in self._lost or lease.job_id in self._writer.job_ids
            if job is not None and job.token == lease.token and not ended_or_lost:
                self._lose(lease)

    def _tell_cancelled(self, leases: list[Lease]) -> None:
        """Tell the runs an operator asked to stop (ops/cancel.py): a sync task sees
        `current_job().cancel_requested`, an async one is cancelled."""
        untold = [lease for lease in leases if not self._inflight[lease.job_id].cancel_requested]
        if not untold:
            return
        with self.store.snapshot() as execute:
            asked = cancel.asked_to_stop(execute, untold)
        for lease in asked:
            self._inflight[lease.job_id].request_cancel()
            if self._slots is not None:
                self._slots.cancel(lease.job_id)
            log.info("job %s was asked to stop", lease.job_id)

    # -- paused queues and presence ---------------------------------------------------

    def _is_held(self, job: LeasedJob) -> bool:
        """Whether a slot about to start `job` must not: the worker is stopping, its
        queue was paused, its lease is lost or about to expire (another worker may own
        the job by now), or it is a letter and the DLQ handler cannot take letters now
        (a component is down)."""
        if self._stop.is_set() or job.queue in self._paused or job.id in self._lost:
            return True
        if job.queue in self._letter_queues and not self._takes_letters():
            return True
        return self._expires.get(job.id, 0.0) - START_MARGIN <= time.time()

    def _give_back(self, held: list[LeasedJob]) -> None:
        """Leases of jobs held back unstarted (a paused queue, a lease lost or expiring, a
        letter the DLQ handler did not take): returned uncharged where still ours, the jobs
        wait on their queue to be leased again; a lease already taken over is left to its
        new owner (the release is fenced)."""
        released = self.store.release([job.lease for job in held], now=time.time())
        for job in held:
            self._forget(job)
        log.info("gave back %d of %d jobs held unstarted", released, len(held))

    def _beat(self) -> None:
        """Write this worker's presence (a periodic duty): what `deadletter workers` shows."""
        now = time.time()
        running = self._slots.running() if self._slots else []
        presence = WorkerPresence(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=_VERSION,
            queues=self.queues,
            concurrency=self.settings.concurrency,
            started_at=self._started_at,
            heartbeat_at=now,
            running=tuple(RunningJob(job.id, job.task, job.queue, at) for job, at in running),
            throughput=self._rates.take(now),
        )
        self.store.beat_worker(presence, forget_before=now - FORGET_WORKERS_AFTER)

    def _leave(self) -> None:
        for observer in self._observers:
            observer.close()
        try:
            self.store.drop_worker(self.name)
        except Exception:  # the database is away: readers pass over the silent worker
            log.warning("could not remove worker %s from the live workers", self.name)

    def _drained(self) -> bool:
        if self._inflight:
            return False
        due = self.store.next_due(self.queues)
        if due is None:
            return True
        pause = min(max(due - time.time(), 0.0), self.settings.poll_interval)
        self._stop.wait(pause)
        return False

    # -- stopping -------------------------------------------------------------------

    def _shutdown(self, slots: Slots) -> None:
        """Give back at once the jobs waiting for a slot (the slots start no more once
        stopping), let running jobs finish within the grace period, then give back the
        rest."""
        if unstarted := slots.unstarted():
            self._stored(lambda: self._give_back(unstarted))
        deadline = time.monotonic() + self.settings.grace_seconds
        while self.running() and time.monotonic() < deadline and not self._stop_now.is_set():
            self._collect(_drain(slots, min(FLUSH_INTERVAL, max(deadline - time.monotonic(), 0))))
        if self._unsaved or self._writer.job_ids:
            self._stored(self._save_all)
        if self._inflight:
            self._stored(self._release_unfinished)

    def _release_unfinished(self) -> None:
        leases = [job.lease for job in self._inflight.values()]
        released = self.store.release(leases, now=time.time())
        log.warning("released %d unfinished jobs at shutdown", released)
        self._inflight.clear()
        self._again.clear()
        self._expires.clear()
        self._lost.clear()

    def _stored(self, write: Callable[[], None]) -> None:
        """Run `write` at shutdown, waiting out an outage unless told to stop now: then
        the jobs' leases expire and they run again elsewhere."""
        while True:
            try:
                write()
                self._outage.succeeded()
                return
            except StoreUnavailable as exc:
                if self._stop_now.is_set():
                    log.error("stopped during a store outage; unsaved jobs will run again")
                    return
                self._outage.failed(exc, self._stop_now)


def _version() -> str:
    try:
        return importlib.metadata.version("deadletter")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


_VERSION = _version()


def _letters(jobs: Iterable[LeasedJob]) -> frozenset[str]:
    return frozenset(job.id for job in jobs if job.task == DEAD_LETTER_TASK)


def _drain(slots: Slots, wait: float) -> list[Finished]:
    """Everything finished so far; wait up to `wait` seconds for the first one."""
    results = slots.results
    finished: list[Finished] = []
    if wait > 0 and results.empty():
        try:
            finished.append(results.get(timeout=wait))
        except queue.Empty:
            return finished
    while not results.empty():
        finished.append(results.get_nowait())
    return finished


def _lost_failure(item: LostLease, now: float) -> Failure:
    message = f"worker {item.lost_worker} was lost while running the job (lease expired)"
    return Failure(WorkerLost(message), "", item.began_at, now, item.lost_worker)
