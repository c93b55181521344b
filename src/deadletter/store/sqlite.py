"""The embedded backend: one SQLite file in WAL mode.

Durability: `synchronous=FULL` with WAL, so a committed transaction survives a
power loss, not only a process crash (NORMAL would lose the last commits on power
loss). One write is made without waiting for the disk: the mark that a job's attempt
began (`begin`), which matters only if its worker dies and the database does not; lost
in a power loss, it leaves that attempt uncharged.

Writers take the lock up front (`BEGIN IMMEDIATE`) and wait for it through
`busy_timeout`: a deferred transaction that upgrades from read to write can fail with
"database is locked" at once, whatever the timeout, which is the classic way several
processes sharing one file break.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from deadletter.errors import StoreUnavailable
from deadletter.model import (
    Attempt,
    FailureRecord,
    HostEvent,
    Job,
    JobState,
    Lease,
    LeasedJob,
    NewJob,
    Origin,
    parked_queue,
)
from deadletter.store import failures, hosts, outcome_rows, reports, rows
from deadletter.store.base import (
    DEAD_LETTER_TASK,
    CallerConnection,
    DeadLettered,
    JobOutcome,
    LostLease,
    dead_letter_id,
    dead_letter_payload,
    kind_of,
    wrong_connection,
)
from deadletter.store.failures import Execute
from deadletter.store.fleet import FleetMixin
from deadletter.store.group import GroupCommit
from deadletter.store.outbox import (
    DUE,
    UNREPORTED,
    Delivery,
    Outbox,
    claim,
    give_back,
    settle,
    summarise,
)
from deadletter.store.prune import PruneMixin
from deadletter.store.query import marks
from deadletter.store.schedules import ADVANCE, ScheduleMixin
from deadletter.store.schema import migrations
from deadletter.store.sqlite_files import prepare

T = TypeVar("T")

# What statements run on: the store's connection, or a cursor of the caller's.
Db = sqlite3.Connection | sqlite3.Cursor

BUSY_TIMEOUT_MS = 60_000
# The WAL file keeps the size of its largest burst (a long reader can hold checkpoints
# back while writers go on) unless it is cut when the log restarts: to this size, eight
# times what a checkpoint every 1,000 pages leaves it at.
WAL_SIZE_LIMIT = 32 * 2**20
# SQLite's bound-parameter limit is large, but a chunk keeps statements cheap to prepare.
CHUNK = 500

# Jobs per INSERT: one statement of many rows costs ~40% less per job than executemany,
# which binds and steps a statement per row; 12 x 200 parameters stay far below
# SQLite's limit (32,766).
INSERT_CHUNK = 200

# How often an idle worker asks whether another connection committed (wait_for_work).
WAKE_CHECK = 0.01

INSERT_JOBS = """
INSERT INTO queue_jobs (id, queue, task, payload, status, priority, max_retries,
    dead_letter_queue, run_at, created_at, labels, idempotency_key, task_max_retries)
VALUES {rows}
ON CONFLICT DO NOTHING
"""
NEW_JOB_ROW = "(?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)"

# Oldest ready job first within a priority. Each queue is read on its own, in the order
# of the partial index queue_jobs_ready, so that a scan stops after `limit` rows; with
# `queue IN (...)` SQLite sorted every ready job of the queues on every lease. Dead
# letters, up to their budget, go first: they would otherwise wait behind every job
# queued before their job failed.
LEASE = f"""
UPDATE queue_jobs
SET status = 'running', attempts = attempts + 1, lease_owner = ?,
    lease_token = lease_token + 1, lease_expires_at = ?, attempt_started_at = ?,
    attempt_began_at = NULL, started_at = coalesce(started_at, ?)
WHERE id IN (
    WITH ready AS ({{ready}}),
    letters AS (
        SELECT id FROM ready WHERE task = '{DEAD_LETTER_TASK}'
        ORDER BY priority DESC, run_at LIMIT ?)
    SELECT id FROM ready
    ORDER BY id IN (SELECT id FROM letters) DESC, priority DESC, run_at LIMIT ?)
RETURNING {rows.LEASED_COLUMNS}
"""

# The ready jobs of one queue, as many as a lease may take (queue, now, limit); none of
# a paused queue (store/fleet.py).
READY = """
SELECT * FROM (
    SELECT id, task, priority, run_at FROM queue_jobs
    WHERE status IN ('queued', 'retrying') AND queue = ? AND run_at <= ?
        AND queue NOT IN (SELECT queue FROM queue_pauses)
    ORDER BY priority DESC, run_at
    LIMIT ?)
"""

EXPIRED = """
SELECT id, lease_owner, lease_token, attempt_began_at FROM queue_jobs
WHERE status = 'running' AND lease_expires_at < ?
LIMIT ?
"""

# A new token for the reclaimer, which records the lost attempt; the owner's name is
# kept, the attempt being its own (a reclaimer lost before it records the attempt
# does not take the blame for it).
RECLAIM = f"""
UPDATE queue_jobs
SET lease_token = lease_token + 1, lease_expires_at = ?
WHERE id = ? AND status = 'running'
RETURNING {rows.LEASED_COLUMNS}
"""

EXTEND = """
UPDATE queue_jobs SET lease_expires_at = ?
WHERE id = ? AND lease_token = ? AND status = 'running'
"""

BEGIN = """
UPDATE queue_jobs SET attempt_began_at = ?
WHERE id = ? AND lease_token = ? AND status = 'running'
"""

# Every outcome kind of a batch in one UPDATE (see outcome_rows.change): a NULL leaves
# the column as it was. Fenced by the lease token; RETURNING names the rows applied.
FINISH = """
WITH o(id, token, status, run_at, completed_at, last_error) AS (VALUES {rows})
UPDATE queue_jobs
SET status = o.status, run_at = coalesce(o.run_at, queue_jobs.run_at),
    completed_at = coalesce(o.completed_at, queue_jobs.completed_at),
    last_error = coalesce(o.last_error, queue_jobs.last_error),
    lease_owner = NULL, lease_expires_at = NULL
FROM o
WHERE queue_jobs.id = o.id AND queue_jobs.lease_token = o.token AND queue_jobs.status = 'running'
RETURNING queue_jobs.id
"""

# A released attempt did not happen: the job goes back with its attempt count restored,
# ready at the given time or, given none, in its place in the queue. The second value is
# added to worker_losses: 1 when the lease expired (its worker was lost, migration 0024).
RELEASE = """
UPDATE queue_jobs
SET status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END,
    attempts = attempts - 1, run_at = coalesce(?, run_at), lease_owner = NULL,
    lease_expires_at = NULL, worker_losses = worker_losses + ?
WHERE id = ? AND lease_token = ? AND status = 'running'
"""

# Jobs of a paused queue are not pending: they wait for the operator, not for a time.
NEXT_DUE = """
SELECT min(t) FROM (
    SELECT min(run_at) AS t FROM queue_jobs
    WHERE status IN ('queued', 'retrying') AND queue IN ({queues})
        AND queue NOT IN (SELECT queue FROM queue_pauses)
    UNION ALL
    SELECT min(lease_expires_at) FROM queue_jobs WHERE status = 'running' AND queue IN ({queues}))
"""

INSERT_ATTEMPT = f"""
INSERT INTO job_attempts ({rows.ATTEMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class SqliteStore(FleetMixin, PruneMixin, ScheduleMixin):
    """A `Store` on one SQLite file, shared safely by several processes."""

    def __init__(self, path: Path) -> None:
        prepare(path)
        self.path = path
        self.url = f"sqlite:///{path}"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # Threads of this process take turns at the write lock here: waiting for it in
        # SQLite's busy handler sleeps 1 ms, then longer, each time it finds it taken.
        self._writer = threading.Lock()
        # Concurrent enqueues of this process share a commit (store/group.py). Refused
        # rows: a number too large for SQLite's INTEGER, a constraint broken.
        self.group_commit = GroupCommit(
            self._enqueue_now, refused=(OverflowError, sqlite3.IntegrityError, sqlite3.DataError)
        )
        # One writer at a time, in this process, under the GIL: a write on another thread
        # only waits its turn.
        self.concurrent_writes = False

    # -- connections ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        # Each connection serves one thread; close() may run on another, hence no thread check.
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return conn

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with self._translated(), self._turn_to_write():
            conn = self._conn()
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back itself (a full disk): nothing left to undo.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def _turn_to_write(self) -> Iterator[None]:
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise sqlite3.OperationalError("database is locked by another thread")
        try:
            yield
        finally:
            self._writer.release()

    @contextmanager
    def transaction(self) -> Iterator[Execute]:
        with self._write() as conn:
            yield conn.execute

    @contextmanager
    def snapshot(self) -> Iterator[Execute]:
        # A deferred transaction: a consistent read that blocks no writer (WAL).
        with self._translated():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn.execute
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The driver's errors that mean "not now" (a lock held past busy_timeout, a full
        disk, a file that cannot be opened) as StoreUnavailable: callers wait them out."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            reason = _unavailable(exc)
            if reason is None:
                raise
            raise StoreUnavailable(f"SQLite database {self.path} {reason} ({exc})") from exc

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- schema ----------------------------------------------------------------

    def migrate(self) -> list[str]:
        # A read first, which takes no lock: an app opening its store inside a caller's
        # transaction on this file (enqueue_in) would wait for that caller's write lock.
        with self._translated():
            if {m.version for m in migrations("sqlite")} <= _applied(self._conn()):
                return []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = _applied(conn)
            applied = []
            for migration in migrations("sqlite"):
                if migration.version in done:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.name)
        return applied

    # -- producing -----------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        return self.group_commit.enqueue(jobs)

    def _enqueue_now(self, jobs: Sequence[NewJob]) -> list[str]:
        # Built before the write lock is taken: other writers wait for it.
        inserts = _inserts(jobs)
        if len(inserts) == 1 and not any(j.idempotency_key for j in jobs):
            # One statement is a transaction of its own (autocommit, durable as any
            # commit here): no BEGIN and COMMIT round of ours, a third of the calls.
            with self._translated():
                self._conn().execute(*inserts[0])
            return [j.id for j in jobs]
        with self._write() as conn:
            return _insert(conn, jobs, inserts)

    def enqueue_in(self, connection: CallerConnection, jobs: Sequence[NewJob]) -> list[str]:
        cursor = self._cursor_of(connection)
        with self._translated():
            # A legacy-mode connection begins its transaction before the first INSERT.
            return _insert(cursor, jobs, _inserts(jobs))

    def _cursor_of(self, connection: object) -> sqlite3.Cursor:
        """A cursor of `connection` if a job inserted with it commits with the caller's
        writes: a sqlite3 connection to this store's file, in a transaction or to begin
        one; its rows are tuples, whatever the caller's row factory."""
        store = f"the SQLite store at {self.path}"
        if not isinstance(connection, sqlite3.Connection):
            raise wrong_connection(store, f"a sqlite3.Connection, not a {kind_of(connection)}")
        cursor = connection.cursor()
        cursor.row_factory = None
        files = cursor.execute("PRAGMA database_list").fetchall()
        main = next(file for _, name, file in files if name == "main")
        if not main or Path(main).resolve() != self.path.resolve():
            raise wrong_connection(
                store,
                f"the connection is to {main or 'a temporary database'}; a job commits"
                " with your writes only in the one file that holds both (database_url)",
            )
        # The legacy isolation_level=None, or Python 3.12's autocommit=True.
        autocommit = (
            connection.isolation_level is None or getattr(connection, "autocommit", 0) is True
        )
        if autocommit and not connection.in_transaction:
            raise wrong_connection(
                store,
                "the connection is in autocommit mode outside a transaction, so the job would"
                " commit on its own: execute BEGIN first",
            )
        return cursor

    def advance_schedule(self, name: str, *, after: int, to: int, job: NewJob | None) -> bool:
        with self._write() as conn:
            if conn.execute(ADVANCE, (to, name, after)).rowcount == 0:
                return False
            if job is not None:
                _run_all(conn, _inserts([job]))
        return True

    # -- leasing -----------------------------------------------------------------

    def lease(
        self,
        queues: Sequence[str],
        *,
        limit: int,
        worker: str,
        now: float,
        lease_seconds: float,
        letters: int = 0,
    ) -> list[LeasedJob]:
        sql = _lease_sql(len(queues))
        ready = [value for queue in queues for value in (queue, now, limit)]
        params = (worker, now + lease_seconds, now, now, *ready, letters, limit)
        # A read first, which takes no lock: an idle worker's poll never holds the write
        # lock, so a worker frozen (a debugger, a paused VM) mid-poll blocks no producer.
        probe = [value for queue in queues for value in (queue, now, 1)]
        with self._translated():
            conn = self._conn()
            # What wait_for_work compares with: a commit made after this read and before
            # the wait began wakes it too.
            self._local.version = _data_version(conn)
            if conn.execute(_ready_sql(len(queues)), probe).fetchone() is None:
                return []
        with self._write() as conn:
            return [rows.leased_job(r) for r in conn.execute(sql, params).fetchall()]

    def reclaim_expired(self, *, limit: int, now: float, lease_seconds: float) -> list[LostLease]:
        # As in lease: the write lock only when a lease has expired.
        with self._translated():
            if not self._conn().execute(EXPIRED, (now, 1)).fetchall():
                return []
        with self._write() as conn:
            expired = conn.execute(EXPIRED, (now, limit)).fetchall()
            lost = []
            for job_id, owner, token, began_at in expired:
                # An attempt that never began is not charged: the job goes back in its place.
                if began_at is None:
                    conn.execute(RELEASE, (None, 1, job_id, token))
                    continue
                row = conn.execute(RECLAIM, (now + lease_seconds, job_id)).fetchone()
                lost.append(LostLease(rows.leased_job(row), owner or "unknown", began_at))
            return lost

    def extend(self, leases: Sequence[Lease], *, until: float) -> list[Lease]:
        with self._write() as conn:
            return _not_ours(conn, EXTEND, until, leases)

    def begin(self, leases: Sequence[Lease], *, now: float) -> list[Lease]:
        with self._write(durable=False) as conn:
            return _not_ours(conn, BEGIN, now, leases)

    def release(self, leases: Sequence[Lease], *, now: float) -> int:
        with self._write() as conn:
            return sum(
                conn.execute(RELEASE, (now, 0, lease.job_id, lease.token)).rowcount
                for lease in leases
            )

    # -- outcomes ----------------------------------------------------------------

    def finish(self, outcomes: Sequence[JobOutcome], *, now: float) -> set[str]:
        unique = outcome_rows.unique(outcomes)
        with self._write() as conn:
            applied = self._apply(conn, unique, now)
            failed = outcome_rows.failed(unique, applied)
            conn.executemany(INSERT_ATTEMPT, [rows.attempt_params(o.attempt) for o in failed])
            dead = [o for o in failed if isinstance(o, DeadLettered)]
            if dead:
                self._insert_dead_letters(conn, dead, now)
        return applied

    @staticmethod
    def _apply(conn: sqlite3.Connection, outcomes: list[JobOutcome], now: float) -> set[str]:
        """The fenced status changes, a chunk per statement; the ids of those applied."""
        applied: set[str] = set()
        for chunk in _chunks(outcomes):
            sql = FINISH.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk)))
            params = [value for o in chunk for value in outcome_rows.change(o, now)]
            applied.update(r[0] for r in conn.execute(sql, params))
        return applied

    def _insert_dead_letters(
        self, conn: sqlite3.Connection, dead: list[DeadLettered], now: float
    ) -> None:
        by_id = {d.lease.job_id: d for d in dead}
        jobs = self._rows_by_id(conn, "queue_jobs", "id", list(by_id))
        history = self._history(conn, list(by_id))
        letters = []
        for job_id, outcome in by_id.items():
            row = jobs[job_id][0]
            past = history.get(job_id, [])
            letters.append(
                NewJob(
                    id=dead_letter_id(job_id, len(past)),
                    queue=row["dead_letter_queue"],
                    task=DEAD_LETTER_TASK,
                    payload=dead_letter_payload(row, past, outcome.reason, poison=outcome.poison),
                    max_retries=outcome.dlq_max_retries,
                    dead_letter_queue=parked_queue(row["dead_letter_queue"]),
                    run_at=now,
                    created_at=now,
                    priority=row["priority"],
                    labels=rows.load_labels(row["labels"]),
                )
            )
        _run_all(conn, _inserts(letters))

    def _history(self, conn: sqlite3.Connection, job_ids: list[str]) -> dict[str, list[Attempt]]:
        found = self._rows_by_id(conn, "job_attempts", "job_id", job_ids, order="seq")
        return {job_id: [rows.attempt(r) for r in rs] for job_id, rs in found.items()}

    @staticmethod
    def _rows_by_id(
        conn: sqlite3.Connection, table: str, column: str, ids: list[str], order: str = "rowid"
    ) -> dict[str, list[sqlite3.Row]]:
        found: dict[str, list[sqlite3.Row]] = {}
        for chunk in _chunks(ids):
            sql = f"SELECT * FROM {table} WHERE {column} IN ({marks(chunk)}) ORDER BY {order}"
            for row in conn.execute(sql, chunk):
                found.setdefault(row[column], []).append(row)
        return found

    # -- dead-letter handling ---------------------------------------------------------

    def record_failures(
        self, records: Sequence[FailureRecord], *, now: float, alert_window: float
    ) -> failures.Recorded:
        with self._write() as conn:
            return failures.record_failures(
                conn.execute, records, now=now, alert_window=alert_window
            )

    # -- jobs of other job systems (store/hosts.py) ---------------------------------

    def record_host_events(self, events: Sequence[HostEvent], *, now: float) -> list[str]:
        with self._write() as conn:
            return hosts.record_host_events(conn.execute, events, now=now)

    def origin(self, job_id: str) -> Origin | None:
        with self._write() as conn:
            return hosts.origin(conn.execute, job_id)

    def prepare_send(self, system: str, message_id: str, job_id: str) -> bool:
        with self._write() as conn:
            return hosts.prepare_send(conn.execute, system, message_id, job_id)

    def mark_sent(self, system: str, message_id: str, *, at: float) -> None:
        with self._write() as conn:
            return hosts.mark_sent(conn.execute, system, message_id, at)

    def add_alert(self, *, alert_id: str, kind: str, title: str, body: str, now: float) -> None:
        with self._write() as conn:
            failures.insert_alert(
                conn.execute, alert_id=alert_id, kind=kind, title=title, body=body, now=now
            )

    def claim_deliveries(
        self, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
    ) -> list[Delivery]:
        # Read first, here and in summarise_alerts: a dispatcher asks every second, and a
        # write transaction takes the file's write lock even to find nothing.
        if not self._found(DUE[outbox], (now, now, 1)):
            return []
        with self._write() as conn:
            return claim(conn.execute, outbox, now=now, limit=limit, claim_seconds=claim_seconds)

    def settle_delivery(
        self, delivery: Delivery, *, now: float, error: str | None, retry_at: float
    ) -> None:
        with self._write() as conn:
            settle(conn.execute, delivery, now=now, error=error, retry_at=retry_at)

    def release_deliveries(self, deliveries: Sequence[Delivery], *, due: float | None) -> None:
        with self._write() as conn:
            give_back(conn.execute, deliveries, due=due)

    def summarise_alerts(self, *, now: float, window: float) -> list[str]:
        if not self._found(UNREPORTED, (now - window,)):
            return []
        with self._write() as conn:
            return summarise(conn.execute, now=now, window=window)

    # -- reading -------------------------------------------------------------------

    def dlq_stats(self, *, now: float) -> reports.DlqStats:
        return reports.dlq_stats(self._conn().execute, now=now)

    def recent_failures(self, *, limit: int) -> list[reports.FailureRow]:
        return reports.recent_failures(self._conn().execute, limit=limit)

    def next_due(self, queues: Sequence[str]) -> float | None:
        sql = NEXT_DUE.format(queues=marks(queues))
        due: float | None = self._conn().execute(sql, (*queues, *queues)).fetchone()[0]
        return due

    def get_job(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT * FROM queue_jobs WHERE id = ?", (job_id,)).fetchone()
        return rows.job(row) if row else None

    def list_jobs(
        self, *, queue: str | None = None, state: JobState | None = None, limit: int = 50
    ) -> list[Job]:
        sql = (
            "SELECT * FROM queue_jobs WHERE (? IS NULL OR queue = ?) AND (? IS NULL OR status = ?)"
        )
        sql += " ORDER BY created_at DESC, id LIMIT ?"
        status = state.value if state else None
        found = self._conn().execute(sql, (queue, queue, status, status, limit)).fetchall()
        return [rows.job(r) for r in found]

    def attempts(self, job_id: str) -> list[Attempt]:
        return self._history(self._conn(), [job_id]).get(job_id, [])

    def count_states(self) -> dict[tuple[str, JobState], int]:
        sql = "SELECT queue, status, count(*) FROM queue_jobs GROUP BY queue, status"
        return {(q, JobState(s)): n for q, s, n in self._conn().execute(sql)}

    def wait_for_work(self, queues: Sequence[str], timeout: float, stop: threading.Event) -> None:
        # SQLite has no notifications, but `data_version` changes when another connection
        # commits: a read that takes no lock, cheap enough to ask every few milliseconds.
        # Compared with its value at this thread's last lease, if any.
        deadline = time.monotonic() + timeout
        with self._translated():
            conn = self._conn()
            seen = getattr(self._local, "version", None)
            if seen is None:
                seen = _data_version(conn)
            while _data_version(conn) == seen:
                if stop.wait(WAKE_CHECK) or time.monotonic() >= deadline:
                    return


def _data_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA data_version").fetchone()[0]
    return version


def _not_ours(
    conn: sqlite3.Connection, sql: str, value: float, leases: Sequence[Lease]
) -> list[Lease]:
    """Run `sql` (value, job id, token) for each lease; the leases it changed no row of."""
    return [
        lease
        for lease in leases
        if conn.execute(sql, (value, lease.job_id, lease.token)).rowcount == 0
    ]


@functools.lru_cache(maxsize=16)
def _lease_sql(queues: int) -> str:
    return LEASE.format(ready=" UNION ALL ".join([READY] * queues))


@functools.lru_cache(maxsize=16)
def _ready_sql(queues: int) -> str:
    return "SELECT 1 FROM (" + " UNION ALL ".join([READY] * queues) + ") LIMIT 1"


@functools.lru_cache(maxsize=4)
def _insert_sql(jobs: int) -> str:
    return INSERT_JOBS.format(rows=", ".join([NEW_JOB_ROW] * jobs))


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _inserts(jobs: Sequence[NewJob]) -> list[tuple[str, list[Any]]]:
    """The statements that insert `jobs`, with their parameters."""
    return [
        (
            _insert_sql(len(chunk)),
            [value for job in chunk for value in rows.new_job_params(job)],
        )
        for chunk in _chunks(jobs, INSERT_CHUNK)
    ]


def _run_all(db: Db, statements: list[tuple[str, list[Any]]]) -> None:
    for sql, params in statements:
        db.execute(sql, params)


# The jobs that hold idempotency keys: an enqueue returns their ids for the keys it reused.
HOLDERS = "SELECT idempotency_key, id FROM queue_jobs WHERE idempotency_key IN ({keys})"


def _insert(db: Db, jobs: Sequence[NewJob], inserts: list[tuple[str, list[Any]]]) -> list[str]:
    """Run `inserts` (of `jobs`) in the open transaction; the ids `enqueue` returns."""
    _run_all(db, inserts)
    keys = [j.idempotency_key for j in jobs if j.idempotency_key]
    holders: dict[str, str] = {}
    for chunk in _chunks(keys):
        sql = HOLDERS.format(keys=marks(chunk))
        holders.update((row[0], row[1]) for row in db.execute(sql, chunk))
    return rows.enqueued_ids(jobs, holders)


def _applied(conn: sqlite3.Connection) -> set[int]:
    """The versions of the migrations applied to the file; none before the first."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone():
        return {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    return set()


def _statements(sql: str) -> list[str]:
    """Split a migration file into statements, as SQLite's own tokenizer ends them: a ';'
    in a comment, a string or a trigger's body does not end a statement."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())  # a last statement without its ';'
    return statements


# SQLite's messages for the errors a caller should wait out, and what they mean.
UNAVAILABLE = {
    "locked": "is locked by another connection",
    "busy": "is locked by another connection",
    "disk is full": "is on a full disk",
    "disk I/O error": "cannot be read or written (disk I/O error)",
    "unable to open": "cannot be opened",
}


def _unavailable(exc: sqlite3.OperationalError) -> str | None:
    """What `exc` says of the database, if it is one of the UNAVAILABLE errors."""
    message = str(exc)
    return next((why for text, why in UNAVAILABLE.items() if text in message), None)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch a file to WAL, which then sticks to the file.

    Connections opening a new file at once race on the switch, and SQLite fails the
    loser at once with "database is locked", ignoring busy_timeout; so retry here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
