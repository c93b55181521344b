"""The many-machines backend: PostgreSQL through psycopg 3 and a connection pool.

Durability: the server's default `synchronous_commit = on` is kept, so a commit has
reached the write-ahead log on disk when it returns; neither a server crash nor a power
loss afterwards undoes it. The exception is the mark that a job's attempt began
(`begin`, `synchronous_commit = off`), which matters only if its worker dies and the
server does not; lost in a server crash, it leaves that attempt uncharged.

Concurrency: leasers take rows with `FOR UPDATE SKIP LOCKED`, so workers on any number
of machines pass over each other's candidates instead of queueing behind them, and
`lease_token` fences out a worker whose lease was taken over. Batches travel as one
array per column and are expanded by `unnest`, so a batch costs one statement whatever
its size, not one round trip per job. Idle workers `LISTEN` on one channel; enqueue
sends `NOTIFY` in its own transaction, which PostgreSQL delivers only on commit.
"""

from __future__ import annotations

import functools
import logging
import select
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from deadletter.errors import StoreError, StoreUnavailable
from deadletter.model import (
    PARKED_SUFFIX,
    Attempt,
    FailureRecord,
    HostEvent,
    Job,
    JobState,
    Lease,
    LeasedJob,
    NewJob,
    Origin,
)
from deadletter.store import failures, hosts, outcome_rows, reports, rows
from deadletter.store.base import (
    DEAD_LETTER_TASK,
    CallerConnection,
    DeadLettered,
    JobOutcome,
    LostLease,
    Succeeded,
    kind_of,
    wrong_connection,
)
from deadletter.store.failures import Execute
from deadletter.store.fleet import FleetMixin
from deadletter.store.group import GroupCommit
from deadletter.store.outbox import Delivery, Outbox, claim, give_back, settle, summarise
from deadletter.store.prune import PruneMixin
from deadletter.store.schedules import ADVANCE, ScheduleMixin
from deadletter.store.schema import migrations

# The pool logs each failed reconnection; an outage is logged once, by whoever waits it
# out (worker/outage.py), and the store's own errors say what failed.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

CHANNEL = "deadletter_jobs"
POOL_MIN = 1
POOL_MAX = 8
# How long an operation waits for a pooled connection before StoreUnavailable.
POOL_TIMEOUT = 10.0
# A wait for a pooled connection is cut in slices this long, to notice a pool that
# cannot connect (worker/outage.py promises work within a second of the server's return).
WAIT_SLICE = 0.3
# libpq otherwise waits for the operating system's TCP timeout, minutes on some systems.
CONNECT_TIMEOUT = 5
# A connection whose server went silent (a network partition, a host gone) fails after
# seconds instead of the operating system's 15 minutes of retransmissions, during which a
# worker would wait in one call without noticing an outage, and after which it would
# resume minutes after the network came back: data unacknowledged for 5 s
# (tcp_user_timeout), or an idle connection unanswered after 5 s and 5 probes a second
# apart (keepalives). Each applies unless database_url sets it.
LIVENESS: dict[str, int] = {
    "connect_timeout": CONNECT_TIMEOUT,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 5,
}
# The same on the server's side of each connection, asked for at connect (the URL's own
# `options` come after, and win): the server ends the session of a client gone silent,
# and with it a transaction the client had open when its network broke. The row locks of
# that transaction would otherwise outlive the client's leases, by the server's own
# timeouts (2 hours by default), and FOR UPDATE SKIP LOCKED passes over locked rows: no
# other worker could reclaim those jobs meanwhile.
SERVER_LIVENESS = (
    "-c tcp_user_timeout=5000 -c tcp_keepalives_idle=5"
    " -c tcp_keepalives_interval=1 -c tcp_keepalives_count=5"
)
# wait_for_work blocks in slices this long, so that a stop request is seen promptly.
LISTEN_SLICE = 0.5
# The key of the advisory lock that serialises migrations: "dlmg" in ASCII.
MIGRATION_LOCK = 0x646C_6D67

# Arrays are sent in binary (%b): in text format every element is quoted and escaped.
NEW_JOB_COLUMNS = (
    "id, queue, task, payload, priority, max_retries, dead_letter_queue, run_at, created_at,"
    " labels, idempotency_key, task_max_retries"
)

# The whole batch in one statement: one array per column, zipped back into rows by
# ROWS FROM. Payloads and labels travel as one JSON array each, which PostgreSQL parses
# in one pass; per-job JSON strings cost twice the time, in Python and in casts. Conflicts
# (a known id or idempotency key, even within the batch) are skipped. The queues that
# received rows are notified in the same transaction: listeners hear of the jobs once
# they are committed and visible.
INSERT_JOBS = f"""
WITH inserted AS (
    INSERT INTO queue_jobs (status, {NEW_JOB_COLUMNS})
    SELECT 'queued', {NEW_JOB_COLUMNS}
    FROM ROWS FROM (
        unnest(%b::text[]), unnest(%b::text[]), unnest(%b::text[]),
        jsonb_array_elements(%s::jsonb), unnest(%b::int[]), unnest(%b::int[]),
        unnest(%b::text[]), unnest(%b::float8[]), unnest(%b::float8[]),
        jsonb_array_elements(%s::jsonb), unnest(%b::text[]), unnest(%b::int[]))
        AS n({NEW_JOB_COLUMNS})
    ON CONFLICT DO NOTHING
    RETURNING queue)
SELECT pg_notify('{CHANNEL}', queue) FROM inserted GROUP BY queue
"""

# One job (an enqueue call alone, a schedule's tick): the same with VALUES, which
# PostgreSQL runs in less time than the arrays' unnesting: 1.3x at one row, 1.2x at 2
# and 4, 0.7x at 16 (bench/pg_insert_forms.py); batches keep the arrays, as VALUES for
# up to 4 rows did not move the 8-thread enqueue (docs/benchmarks.md "Single enqueue").
INSERT_JOB = f"""
WITH inserted AS (
    INSERT INTO queue_jobs (status, {NEW_JOB_COLUMNS})
    VALUES ('queued', %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
    ON CONFLICT DO NOTHING
    RETURNING queue)
SELECT pg_notify('{CHANNEL}', queue) FROM inserted
"""

IDS_BY_KEY = "SELECT idempotency_key, id FROM queue_jobs WHERE idempotency_key = ANY(%b::text[])"

# A leased job's jsonb columns read as text: json.loads of a str costs less than the
# driver's JSON loader of bytes, and labels, mostly "{}", are not decoded at all
# (rows.loads): a lease of 400 jobs took 5.1 ms of the worker's CPU, 3.3 as text, medians
# (docs/benchmarks.md, "Reading a lease").
LEASED_COLUMNS = rows.LEASED_COLUMNS.replace("payload", "payload::text").replace(
    "labels", "labels::text"
)

# SKIP LOCKED lets concurrent leasers take disjoint batches without waiting for each
# other. Oldest first within a priority. Each queue is read on its own, in the order of
# the partial index queue_jobs_ready, so the scan stops after `limit` rows: with
# `queue = ANY(...)` PostgreSQL sorted every ready job of the queues on every lease (the
# lock sits between the sort and the limit), milliseconds per lease for a long backlog.
# Rows locked by one queue's scan and cut by the final LIMIT are let go at commit. A
# paused queue (store/fleet.py) is not scanned. Dead letters, up to their budget, go
# first: they would otherwise wait behind every job queued before their job failed.
LEASE = f"""
WITH ready AS (
    SELECT ready.*
    FROM unnest(%(queues)b::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT id, task, priority, run_at FROM queue_jobs
        WHERE queue = q.name AND status IN ('queued', 'retrying') AND run_at <= %(now)s
        ORDER BY priority DESC, run_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED) AS ready
    WHERE q.name NOT IN (SELECT queue FROM queue_pauses)),
letters AS (
    SELECT id FROM ready WHERE task = '{DEAD_LETTER_TASK}'
    ORDER BY priority DESC, run_at
    LIMIT %(letters)s),
picked AS (
    SELECT id AS picked_id FROM ready
    ORDER BY id IN (SELECT id FROM letters) DESC, priority DESC, run_at
    LIMIT %(limit)s)
UPDATE queue_jobs
SET status = 'running', attempts = attempts + 1, lease_owner = %(worker)s,
    lease_token = lease_token + 1, lease_expires_at = %(expires)s,
    attempt_started_at = %(now)s, attempt_began_at = NULL,
    started_at = coalesce(started_at, %(now)s)
FROM picked
WHERE id = picked_id
RETURNING {LEASED_COLUMNS}
"""

# The previous owner is read in the CTE, before the UPDATE overwrites it. The rows are
# locked there, so they are still running and expired when the UPDATE reaches them.
RECLAIM = f"""
WITH expired AS (
    SELECT id AS expired_id, lease_owner AS lost_worker, attempt_began_at AS began_at
    FROM queue_jobs
    WHERE status = 'running' AND lease_expires_at < %(now)s AND attempt_began_at IS NOT NULL
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE queue_jobs
SET lease_token = lease_token + 1, lease_expires_at = %(expires)s
FROM expired
WHERE id = expired_id
RETURNING {LEASED_COLUMNS}, lost_worker, began_at
"""

# An expired attempt that never began is not charged: the job goes back in its place in
# the queue, which is notified, with its worker's loss counted (migration 0024).
GIVE_BACK = f"""
WITH unbegun AS (
    SELECT id AS unbegun_id FROM queue_jobs
    WHERE status = 'running' AND lease_expires_at < %(now)s AND attempt_began_at IS NULL
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED),
given AS (
    UPDATE queue_jobs
    SET status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END,
        attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
        worker_losses = worker_losses + 1
    FROM unbegun
    WHERE id = unbegun_id
    RETURNING queue)
SELECT pg_notify('{CHANNEL}', queue) FROM given GROUP BY queue
"""

EXTEND = """
UPDATE queue_jobs j SET lease_expires_at = %s
FROM unnest(%b::text[], %b::bigint[]) AS l(id, token)
WHERE j.id = l.id AND j.lease_token = l.token AND j.status = 'running'
RETURNING j.id, l.token
"""

# The start of a task, one job per statement (a slot begins one job; unnest costs more
# than the update itself for one row), committed by itself without waiting for the disk.
BEGIN = """
WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE queue_jobs SET attempt_began_at = %s FROM unflushed
WHERE id = %s AND lease_token = %s AND status = 'running'
RETURNING id
"""

# Many begins in one statement (worker/begins.py writes them while the worker's main
# thread extends and finishes the same rows): it never waits for a row lock while it
# holds another, or the two would deadlock, each locking its rows in its own order. A
# row locked now, or changed since the statement's snapshot, is reported not begun, and
# begun alone afterwards (BEGIN); a row the snapshot shows no longer ours is not listed.
# Each row is looked up by primary key, whatever the statistics say: the LATERAL
# subqueries (their LIMIT and FOR UPDATE keep the planner from joining them as tables)
# and `id = ANY` do that, and `IN` hashes the rows begun. Joined as tables, a fresh or
# unanalysed table was scanned for every running job and the two lists of the batch
# compared row by row: 2.1-3.1x the time of this form (docs/benchmarks.md, "The begin
# batch by primary key").
BEGIN_MANY = """
WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true)),
wanted AS (SELECT * FROM unnest(%(ids)b::text[], %(tokens)b::bigint[]) AS l(id, token)),
ours AS (
    SELECT j.id FROM wanted CROSS JOIN LATERAL (
        SELECT id FROM queue_jobs
        WHERE id = wanted.id AND lease_token = wanted.token AND status = 'running'
        LIMIT 1) AS j),
free AS (
    SELECT j.id FROM wanted CROSS JOIN LATERAL (
        SELECT id FROM queue_jobs
        WHERE id = wanted.id AND lease_token = wanted.token AND status = 'running'
        FOR UPDATE SKIP LOCKED) AS j),
begun AS (
    UPDATE queue_jobs SET attempt_began_at = %(now)s FROM unflushed
    WHERE id = ANY(ARRAY(SELECT id FROM free))
    RETURNING id)
SELECT id, id IN (SELECT id FROM begun) AS begun FROM ours
"""

# A released attempt did not happen: the job goes back with its attempt count restored,
# and its queue is notified so that another worker picks it up without waiting a poll.
RELEASE = f"""
WITH released AS (
    UPDATE queue_jobs j
    SET status = CASE WHEN j.attempts > 1 THEN 'retrying' ELSE 'queued' END,
        attempts = j.attempts - 1, run_at = %s, lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(%b::text[], %b::bigint[]) AS l(id, token)
    WHERE j.id = l.id AND j.lease_token = l.token AND j.status = 'running'
    RETURNING j.queue)
SELECT count(*) AS released, pg_notify('{CHANNEL}', queue) FROM released GROUP BY queue
"""

# Every outcome kind in one UPDATE: a NULL leaves the column as it was (a success keeps
# its last error, a retry its completion time). The attempt rows ride in the same
# statement and are kept only for outcomes whose fenced update applied: a (job, token)
# pair that `applied` returned.
FINISH = f"""
WITH applied AS (
    UPDATE queue_jobs j
    SET status = o.status, run_at = coalesce(o.run_at, j.run_at),
        completed_at = coalesce(o.completed_at, j.completed_at),
        last_error = coalesce(o.last_error, j.last_error),
        lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::float8[], %b::float8[], %b::text[])
        AS o(id, token, status, run_at, completed_at, last_error)
    WHERE j.id = o.id AND j.lease_token = o.token AND j.status = 'running'
    RETURNING j.id, o.token),
recorded AS (
    INSERT INTO job_attempts ({rows.ATTEMPT_COLUMNS})
    SELECT {rows.ATTEMPT_COLUMNS} FROM unnest(%b::bigint[],
        %b::text[], %b::int[], %b::float8[], %b::float8[], %b::text[], %b::text[],
        %b::text[], %b::text[], %b::int[], %b::text[], %b::text[])
        AS a(token, {rows.ATTEMPT_COLUMNS})
    WHERE (a.job_id, a.token) IN (SELECT id, token FROM applied))
SELECT id FROM applied
"""

# A dead letter per job, built where the rows are: the job's whole history (tracebacks
# and all) never travels to Python and back. Id and payload are base.dead_letter_id and
# base.dead_letter_payload, key for key (Attempt.to_json for each attempt; float8
# values become the same JSON numbers as Python's floats); SQLite builds them there.
# The letter's own dead-letter queue is model.parked_queue of the job's DLQ.
INSERT_DEAD_LETTERS = f"""
WITH letters AS (
    SELECT j.*, o.reason, o.poison, o.dlq_max_retries, h.history, h.attempt_count
    FROM unnest(%(ids)b::text[], %(reasons)b::text[], %(poison)b::bool[],
        %(max_retries)b::int[]) AS o(id, reason, poison, dlq_max_retries)
    JOIN queue_jobs j ON j.id = o.id
    CROSS JOIN LATERAL (
        SELECT count(*) AS attempt_count, coalesce(jsonb_agg(jsonb_build_object(
            'number', a.number, 'started_at', a.started_at, 'ended_at', a.ended_at,
            'worker', a.worker, 'error_type', a.error_type, 'message', a.message,
            'traceback', a.traceback, 'http_status', a.http_status,
            'error_class', a.error_class, 'rule', a.rule) ORDER BY a.seq), '[]') AS history
        FROM job_attempts a WHERE a.job_id = j.id) h),
inserted AS (
    INSERT INTO queue_jobs (status, id, queue, task, payload, priority, max_retries,
        dead_letter_queue, run_at, created_at, labels)
    SELECT 'queued', 'dl-' || id || '-' || attempt_count, dead_letter_queue,
        '{DEAD_LETTER_TASK}',
        jsonb_build_object('job_id', id, 'queue', queue, 'task', task, 'payload', payload,
            'labels', labels, 'created_at', created_at, 'reason', reason, 'poison', poison,
            'attempts', history),
        priority, dlq_max_retries, dead_letter_queue || '{PARKED_SUFFIX}', %(now)s, %(now)s, labels
    FROM letters
    ON CONFLICT DO NOTHING
    RETURNING queue)
SELECT pg_notify('{CHANNEL}', queue) FROM inserted GROUP BY queue
"""

# least() skips NULLs: either kind of pending work alone decides. Jobs of a paused queue
# are not pending: they wait for the operator, not for a time. The lease expiry's IS NOT
# NULL changes no result (min skips NULLs) but lets the index of leases serve it (0025).
NEXT_DUE = """
SELECT least(
    (SELECT min(run_at) FROM queue_jobs
     WHERE status IN ('queued', 'retrying') AND queue = ANY(%(queues)b::text[])
        AND queue NOT IN (SELECT queue FROM queue_pauses)),
    (SELECT min(lease_expires_at) FROM queue_jobs
     WHERE status = 'running' AND lease_expires_at IS NOT NULL
        AND queue = ANY(%(queues)b::text[]))) AS due
"""

GET_JOB = "SELECT * FROM queue_jobs WHERE id = %s"

LIST_JOBS = """
SELECT * FROM queue_jobs
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
    AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY created_at DESC, id
LIMIT %(limit)s
"""

ATTEMPTS = "SELECT * FROM job_attempts WHERE job_id = %s ORDER BY seq"

COUNT_STATES = "SELECT queue, status, count(*) AS n FROM queue_jobs GROUP BY queue, status"

# Held until the migrating transaction ends: a second process migrating at the same
# time waits, then finds the migrations recorded and applies nothing.
LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock(%s)"

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL)
"""

RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)"


# Serialization failure, deadlock detected.
CONFLICT_ROLLBACKS = frozenset({"40001", "40P01"})


def _server_away(exc: psycopg.OperationalError) -> bool:
    """Whether the connection, not the statement, failed: no SQLSTATE (a broken socket,
    a pool timeout), class 08 (connection exception) or 57 (shut down, starting up)."""
    return exc.sqlstate is None or exc.sqlstate[:2] in ("08", "57")


def _unavailable_message(where: str, exc: psycopg.OperationalError) -> str:
    """What a StoreUnavailable says: a transaction the server rolled back because it
    conflicted with another (a deadlock, a serialization failure) is not the server
    being away, and asks nothing of the operator; workers retry both alike."""
    # By SQLSTATE: psycopg's DeadlockDetected is not a TransactionRollback. Not all of
    # class 40: after 40003 (statement completion unknown) the write may have happened.
    if exc.sqlstate in CONFLICT_ROLLBACKS:
        return (
            f"PostgreSQL at {where} rolled back a transaction that conflicted with another"
            f" ({driver_reason(exc)}). Nothing of it was written: try again; workers do"
            " so by themselves."
        )
    return (
        f"PostgreSQL at {where} is unavailable ({exc}). Check that the server is running"
        " and reachable from this machine, and that database_url names the right host,"
        " port, database and credentials."
    )


def driver_reason(exc: psycopg.Error) -> str:
    """The reason in libpq's message, without what the message of the store says anyway:
    'connection to server at "h", port 5999 failed: Connection refused' -> 'Connection
    refused'; 'FATAL:  database "x" does not exist' -> 'database "x" does not exist'."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return lines[0].rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()


class PostgresStore(FleetMixin, PruneMixin, ScheduleMixin):
    """A `Store` on one PostgreSQL database, shared by workers on many machines."""

    def __init__(self, url: str, *, timeout: float = POOL_TIMEOUT, fail_fast: bool = False) -> None:
        """`fail_fast`: try one connection first and raise StoreUnavailable at once if it
        fails, rather than let the pool try again for `timeout` seconds."""
        self.url = url
        options = conninfo_to_dict(url)
        self._dbname = options.get("dbname")
        self._where = (
            f"{options.get('host', 'localhost')}:{options.get('port', 5432)}"
            f"/{options.get('dbname', '')}"
        )
        self._connect_options: dict[str, Any] = {
            name: value for name, value in LIVENESS.items() if name not in options
        }
        self._connect_options["options"] = f"{SERVER_LIVENESS} {options.get('options', '')}"
        if fail_fast:
            self._connect_once()
        self._timeout = timeout
        self._pool = self._new_pool()
        # Set while the server is known to be away: operations then fail at once after
        # one direct connection attempt, instead of each waiting `timeout` on the pool.
        self._away = False
        self._swap = threading.Lock()
        # Connections of a thread's own, outside the pool: one LISTEN connection per
        # waiting thread (notifications read by one thread would otherwise never wake
        # another), and one per producing thread (enqueue in one round trip).
        self._local = threading.local()
        self._owned: list[psycopg.Connection[Any]] = []
        self._guard = threading.Lock()
        # Concurrent enqueues of this process share a commit (store/group.py). Refused
        # rows: a number out of an int column's range, a NUL in a text, a constraint.
        self.group_commit = GroupCommit(
            self._enqueue_now, refused=(psycopg.DataError, psycopg.IntegrityError)
        )
        # Each thread writes on a pooled connection of its own, the server doing the work.
        self.concurrent_writes = True

    # -- connections ---------------------------------------------------------

    def _connect_once(self) -> None:
        try:
            psycopg.connect(self.url, **self._connect_options).close()
        except psycopg.OperationalError as exc:
            # The message carries the driver's reason: a chained cause would say it
            # again, on a second line of every one-shot command's error.
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self._where}: {driver_reason(exc)}"
            ) from None

    def _new_pool(self) -> ConnectionPool[psycopg.Connection[DictRow]]:
        return ConnectionPool(
            self.url,
            connection_class=psycopg.Connection[DictRow],
            kwargs={"row_factory": dict_row, **self._connect_options},
            min_size=POOL_MIN,
            max_size=POOL_MAX,
            timeout=self._timeout,
            check=_check_if_spoken_to,
            name="deadletter",
            open=True,
        )

    def _back_yet(self) -> None:
        """After an outage, connect once directly: StoreUnavailable at once while the
        server is still away, and a fresh pool once it answers."""
        if self._away:
            self._reconnect(self._pool)

    def _reconnect(self, pool: ConnectionPool[psycopg.Connection[DictRow]]) -> None:
        """Replace `pool` if the server takes a connection, else raise StoreUnavailable.

        A pool that lost its server retries with a backoff that grows to minutes, and
        work must resume as soon as the server accepts connections again."""
        with self._swap:
            if self._pool is not pool:  # another thread replaced it already
                return
            try:
                self._connect_once()
            except StoreUnavailable:
                self._away = True
                raise
            self._pool, self._away = self._new_pool(), False
        pool.close(timeout=0)

    def _checkout(
        self,
    ) -> tuple[ConnectionPool[psycopg.Connection[DictRow]], psycopg.Connection[DictRow]]:
        """A connection of the pool, waited for in short slices: a pool below its size
        that has none to give is failing to connect, so ask the server directly."""
        deadline = time.monotonic() + self._timeout
        while True:
            pool = self._pool
            left = deadline - time.monotonic()
            try:
                return pool, pool.getconn(timeout=max(min(WAIT_SLICE, left), 0.001))
            except PoolTimeout:
                if left <= WAIT_SLICE:
                    raise
                if pool.get_stats()["pool_size"] < POOL_MAX:
                    self._reconnect(pool)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A pooled connection in one transaction: committed on success, else rolled back."""
        self._back_yet()
        with self._translated():
            pool, conn = self._checkout()
            try:
                with conn:
                    yield conn
            finally:
                pool.putconn(conn)

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Connection[DictRow]]:
        """A pooled connection whose statements each commit by themselves (autocommit):
        for a single statement, the round trips of BEGIN and COMMIT saved."""
        self._back_yet()
        with self._translated():
            pool, conn = self._checkout()
            try:
                conn.autocommit = True
                yield conn
            finally:
                if not conn.closed:
                    conn.autocommit = False
                pool.putconn(conn)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The driver's errors as the store's, saying what to do."""
        try:
            yield
        except psycopg.OperationalError as exc:
            self._away = self._away or _server_away(exc)
            raise StoreUnavailable(_unavailable_message(self._where, exc)) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(
                f"PostgreSQL at {self._where} has no deadletter schema, or an old one"
                f" ({driver_reason(exc)})."
                " Run `deadletter migrate` (or `deadletter deploy`) against it first."
            ) from exc

    def close(self) -> None:
        with self._guard:
            owned, self._owned = self._owned, []
        for conn in owned:
            conn.close()
        self._local = threading.local()
        self._pool.close()

    # -- schema ----------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied = []
        with self._transaction() as conn:
            conn.execute(LOCK_MIGRATIONS, (MIGRATION_LOCK,))
            conn.execute(MIGRATIONS_TABLE)
            done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations("postgres"):
                if migration.version in done:
                    continue
                # Without parameters psycopg sends the file as one simple query,
                # which may hold many statements.
                conn.execute(migration.sql)
                conn.execute(RECORD_MIGRATION, (migration.version, migration.name, time.time()))
                applied.append(migration.name)
        return applied

    # -- producing -----------------------------------------------------------

    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        return self.group_commit.enqueue(jobs) if jobs else []

    def _enqueue_now(self, jobs: Sequence[NewJob]) -> list[str]:
        if not any(j.idempotency_key for j in jobs):
            self._insert_alone(jobs)
            return [j.id for j in jobs]
        with self._transaction() as conn:
            return _insert(conn.cursor(row_factory=tuple_row), jobs)

    def enqueue_in(self, connection: CallerConnection, jobs: Sequence[NewJob]) -> list[str]:
        cursor = self._cursor_of(connection)
        if not jobs:
            return []
        with self._translated():
            # NOTIFY in the caller's transaction: PostgreSQL delivers it at their commit.
            return _insert(cursor, jobs)

    def _cursor_of(self, connection: object) -> psycopg.Cursor[tuple[Any, ...]]:
        """A cursor of `connection` if a job inserted with it commits with the caller's
        writes: a psycopg connection to this store's database, in a transaction or to
        begin one. The cursor is of psycopg's own class, whatever the caller's
        cursor_factory (a client-side cursor would not send the binary arrays)."""
        store = f"the PostgreSQL store at {self._where}"
        if not isinstance(connection, psycopg.Connection):
            raise wrong_connection(store, f"a psycopg.Connection, not a {kind_of(connection)}")
        if self._dbname and connection.info.dbname != self._dbname:
            raise wrong_connection(
                store,
                f"the connection is to database {connection.info.dbname!r}; a job commits"
                " with your writes only in the one database that holds both (database_url)",
            )
        idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if connection.autocommit and idle:
            raise wrong_connection(
                store,
                "the connection is in autocommit mode outside a transaction, so the job would"
                " commit on its own: enqueue inside `with connection.transaction():`",
            )
        return psycopg.Cursor(connection, row_factory=tuple_row)

    def _insert_alone(self, jobs: Sequence[NewJob]) -> None:
        """Insert `jobs` in one statement, autocommitted on this thread's own connection:
        one round trip and one durable commit, with no pool checkout (whose check is a
        round trip of its own); psycopg prepares the statement from its fifth use. The
        ids are made here and a conflict inserts nothing, so the one retry after a broken
        connection (a restarted server) never inserts a job twice."""
        with self._translated():
            try:
                _insert_jobs(self._own("producer"), jobs)
            except psycopg.OperationalError:
                self._drop_own("producer")
                _insert_jobs(self._own("producer"), jobs)

    def advance_schedule(self, name: str, *, after: int, to: int, job: NewJob | None) -> bool:
        with self._transaction() as conn:
            if conn.execute(_placeholders(ADVANCE), (to, name, after)).rowcount == 0:
                return False
            if job is not None:
                _insert_jobs(conn, [job])  # notifies the job's queue at commit
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
        params = {
            "queues": list(queues),
            "now": now,
            "limit": limit,
            "letters": letters,
            "worker": worker,
            "expires": now + lease_seconds,
        }
        with self._statement() as conn:
            leased = conn.cursor(row_factory=tuple_row).execute(LEASE, params)
            return [rows.leased_job(r) for r in leased]

    def reclaim_expired(self, *, limit: int, now: float, lease_seconds: float) -> list[LostLease]:
        params = {"now": now, "limit": limit, "expires": now + lease_seconds}
        with self._transaction() as conn:
            conn.execute(GIVE_BACK, params)
            reclaimed = conn.cursor(row_factory=tuple_row).execute(RECLAIM, params)
            return [
                LostLease(rows.leased_job(r[:-2]), r[-2] or "unknown", r[-1]) for r in reclaimed
            ]

    def extend(self, leases: Sequence[Lease], *, until: float) -> list[Lease]:
        if not leases:
            return []
        with self._statement() as conn:
            kept = {(r["id"], r["token"]) for r in conn.execute(EXTEND, (until, *_ids(leases)))}
        return [lease for lease in leases if (lease.job_id, lease.token) not in kept]

    def begin(self, leases: Sequence[Lease], *, now: float) -> list[Lease]:
        if not leases:
            return []
        with self._statement() as conn:
            # One row alone: it locks no other, so it may wait for its lock.
            begun, alone = _begin_many(conn, leases, now) if len(leases) > 1 else (set(), leases)
            for lease in alone:
                params = (now, lease.job_id, lease.token)
                begun.update(row["id"] for row in conn.execute(BEGIN, params))
        return [lease for lease in leases if lease.job_id not in begun]

    def release(self, leases: Sequence[Lease], *, now: float) -> int:
        if not leases:
            return 0
        with self._transaction() as conn:
            return sum(r["released"] for r in conn.execute(RELEASE, (now, *_ids(leases))))

    # -- outcomes ----------------------------------------------------------------

    def finish(self, outcomes: Sequence[JobOutcome], *, now: float) -> set[str]:
        unique = outcome_rows.unique(outcomes)
        if not unique:
            return set()
        letters = [o for o in unique if isinstance(o, DeadLettered)]
        # Without a dead letter to insert with them, the outcomes are one statement.
        with self._transaction() if letters else self._statement() as conn:
            applied = {r["id"] for r in conn.execute(FINISH, _finish_params(unique, now))}
            dead = [o for o in letters if o.lease.job_id in applied]
            if dead:
                conn.execute(INSERT_DEAD_LETTERS, _dead_letter_params(dead, now))
        return applied

    # -- dead-letter records: SQL shared with SQLite ------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Execute]:
        """One transaction for statements written once for both backends, with `?`."""
        with self._transaction() as conn:

            def execute(sql: str, params: tuple[Any, ...]) -> psycopg.Cursor[Any]:
                return conn.cursor(row_factory=tuple_row).execute(_placeholders(sql), params)

            yield execute

    def snapshot(self) -> AbstractContextManager[Execute]:
        return self.transaction()

    def record_failures(
        self, records: Sequence[FailureRecord], *, now: float, alert_window: float
    ) -> failures.Recorded:
        with self.transaction() as execute:
            return failures.record_failures(execute, records, now=now, alert_window=alert_window)

    # -- jobs of other job systems (store/hosts.py) ---------------------------------

    def record_host_events(self, events: Sequence[HostEvent], *, now: float) -> list[str]:
        with self.transaction() as execute:
            return hosts.record_host_events(execute, events, now=now)

    def origin(self, job_id: str) -> Origin | None:
        with self.transaction() as execute:
            return hosts.origin(execute, job_id)

    def prepare_send(self, system: str, message_id: str, job_id: str) -> bool:
        with self.transaction() as execute:
            return hosts.prepare_send(execute, system, message_id, job_id)

    def mark_sent(self, system: str, message_id: str, *, at: float) -> None:
        with self.transaction() as execute:
            return hosts.mark_sent(execute, system, message_id, at)

    def add_alert(self, *, alert_id: str, kind: str, title: str, body: str, now: float) -> None:
        with self.transaction() as execute:
            failures.insert_alert(
                execute, alert_id=alert_id, kind=kind, title=title, body=body, now=now
            )

    def claim_deliveries(
        self, outbox: Outbox, *, now: float, limit: int, claim_seconds: float
    ) -> list[Delivery]:
        with self.transaction() as execute:
            return claim(execute, outbox, now=now, limit=limit, claim_seconds=claim_seconds)

    def settle_delivery(
        self, delivery: Delivery, *, now: float, error: str | None, retry_at: float
    ) -> None:
        with self.transaction() as execute:
            settle(execute, delivery, now=now, error=error, retry_at=retry_at)

    def release_deliveries(self, deliveries: Sequence[Delivery], *, due: float | None) -> None:
        with self.transaction() as execute:
            give_back(execute, deliveries, due=due)

    def summarise_alerts(self, *, now: float, window: float) -> list[str]:
        with self.transaction() as execute:
            return summarise(execute, now=now, window=window)

    def dlq_stats(self, *, now: float) -> reports.DlqStats:
        with self.transaction() as execute:
            return reports.dlq_stats(execute, now=now)

    def recent_failures(self, *, limit: int) -> list[reports.FailureRow]:
        with self.transaction() as execute:
            return reports.recent_failures(execute, limit=limit)

    # -- reading -------------------------------------------------------------------

    def next_due(self, queues: Sequence[str]) -> float | None:
        with self._transaction() as conn:
            row = conn.execute(NEXT_DUE, {"queues": list(queues)}).fetchone()
        return row["due"] if row else None

    def get_job(self, job_id: str) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute(GET_JOB, (job_id,)).fetchone()
        return rows.job(row) if row else None

    def list_jobs(
        self, *, queue: str | None = None, state: JobState | None = None, limit: int = 50
    ) -> list[Job]:
        params = {"queue": queue, "status": state.value if state else None, "limit": limit}
        with self._transaction() as conn:
            return [rows.job(r) for r in conn.execute(LIST_JOBS, params)]

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._transaction() as conn:
            return [rows.attempt(r) for r in conn.execute(ATTEMPTS, (job_id,))]

    def count_states(self) -> dict[tuple[str, JobState], int]:
        with self._transaction() as conn:
            return {(r["queue"], JobState(r["status"])): r["n"] for r in conn.execute(COUNT_STATES)}

    # -- waiting -------------------------------------------------------------------

    def wait_for_work(self, queues: Sequence[str], timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        wanted = set(queues)
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                if self._notified(wanted, min(left, LISTEN_SLICE)):
                    return
            except psycopg.OperationalError:
                # The server restarted or the network broke: listen on a new connection
                # next turn, and meanwhile wait as a poller would rather than spin.
                self._drop_own("listener")
                stop.wait(min(left, LISTEN_SLICE))

    def _notified(self, wanted: set[str], wait: float) -> bool:
        conn = self._own("listener")
        queues = {n.payload for n in conn.notifies(timeout=wait, stop_after=1)}
        if queues:
            # Take what else is pending, so that a burst of commits wakes us once.
            queues.update(n.payload for n in conn.notifies(timeout=0))
        return not queues.isdisjoint(wanted)

    def _own(self, role: str) -> psycopg.Connection[Any]:
        """This thread's own autocommit connection for `role` (listener or producer)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, role, None)
        if conn is None:
            conn = psycopg.connect(self.url, autocommit=True, **self._connect_options)
            if role == "listener":
                conn.execute(f"LISTEN {CHANNEL}")
            setattr(self._local, role, conn)
            with self._guard:
                self._owned.append(conn)
        return conn

    def _drop_own(self, role: str) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, role, None)
        setattr(self._local, role, None)
        if conn is not None:
            with self._guard:
                self._owned.remove(conn)
            conn.close()


def _check_if_spoken_to(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it is about to lend: a round trip only if the
    server has sent something since the connection was returned. A server that ends a
    connection (a restart, `pg_terminate_backend`, `idle_session_timeout`) says so
    before it closes the socket, and a poll sees that; a quiet connection is lent as it
    is, without the probe's round trip (docs/benchmarks.md, "Round trips of a letter
    handled alone"). A host cut off says nothing either way: the statement meets the
    cut as the probe would have, within the same keepalives."""
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


@functools.lru_cache(maxsize=128)
def _placeholders(sql: str) -> str:
    """sqlite3's `?` placeholders in psycopg's style, where a literal % is written %%."""
    return sql.replace("%", "%%").replace("?", "%s")


def _insert(cursor: psycopg.Cursor[tuple[Any, ...]], jobs: Sequence[NewJob]) -> list[str]:
    """Insert `jobs` in the cursor's transaction; the ids `enqueue` returns."""
    _insert_jobs(cursor, jobs)
    keys = [j.idempotency_key for j in jobs if j.idempotency_key]
    holders = dict(cursor.execute(IDS_BY_KEY, (keys,)).fetchall()) if keys else {}
    return rows.enqueued_ids(jobs, holders)


def _insert_jobs(db: psycopg.Connection[Any] | psycopg.Cursor[Any], jobs: Sequence[NewJob]) -> None:
    if len(jobs) == 1:
        db.execute(INSERT_JOB, _job_values(jobs[0]))
    else:
        _insert_arrays(db, jobs)


def _insert_arrays(
    db: psycopg.Connection[Any] | psycopg.Cursor[Any], jobs: Sequence[NewJob]
) -> None:
    columns = [
        [j.id for j in jobs],
        [j.queue for j in jobs],
        [j.task for j in jobs],
        rows.dump_json_array([j.payload for j in jobs]),
        [j.priority for j in jobs],
        [j.max_retries for j in jobs],
        [j.dead_letter_queue for j in jobs],
        _floats([j.run_at for j in jobs]),
        _floats([j.created_at for j in jobs]),
        rows.dump_json([j.labels for j in jobs]),
        [j.idempotency_key for j in jobs],
        [j.task_max_retries for j in jobs],
    ]
    db.execute(INSERT_JOBS, columns)


def _job_values(job: NewJob) -> list[Any]:
    """A job's values in the order of NEW_JOB_COLUMNS."""
    return [
        job.id,
        job.queue,
        job.task,
        rows.dump_json(job.payload),
        job.priority,
        job.max_retries,
        job.dead_letter_queue,
        job.run_at,
        job.created_at,
        rows.dump_json(job.labels),
        job.idempotency_key,
        job.task_max_retries,
    ]


def _dead_letter_params(dead: list[DeadLettered], now: float) -> dict[str, Any]:
    return {
        "ids": [o.lease.job_id for o in dead],
        "reasons": [o.reason for o in dead],
        "poison": [o.poison for o in dead],
        "max_retries": [o.dlq_max_retries for o in dead],
        "now": now,
    }


def _finish_params(outcomes: list[JobOutcome], now: float) -> list[list[Any]]:
    changes = _columns([outcome_rows.change(o, now) for o in outcomes], width=6)
    for index in (3, 4):
        changes[index] = _floats(changes[index])
    failed = [o for o in outcomes if not isinstance(o, Succeeded)]
    attempts = _columns(
        [(o.lease.token, *rows.attempt_params(o.attempt)) for o in failed], width=12
    )
    for index in (3, 4):
        attempts[index] = _floats(attempts[index])
    return [*changes, *attempts]


def _begin_many(
    conn: psycopg.Connection[DictRow], leases: Sequence[Lease], now: float
) -> tuple[set[str], list[Lease]]:
    """BEGIN_MANY: the ids begun, and the leases still ours to begin one by one."""
    ids, tokens = _ids(leases)
    found = conn.execute(BEGIN_MANY, {"ids": ids, "tokens": tokens, "now": now}).fetchall()
    by_id = {lease.job_id: lease for lease in leases}
    return {row["id"] for row in found if row["begun"]}, [
        by_id[row["id"]] for row in found if not row["begun"]
    ]


def _ids(leases: Sequence[Lease]) -> tuple[list[str], list[int]]:
    return [lease.job_id for lease in leases], [lease.token for lease in leases]


def _columns(params: Sequence[tuple[Any, ...]], *, width: int) -> list[list[Any]]:
    """Rows to one list per column: the arrays that `unnest` turns back into rows."""
    return [[row[index] for row in params] for index in range(width)]


def _floats(values: list[Any]) -> list[float | None]:
    """psycopg refuses an array that mixes int and float; times may be given as either."""
    return [None if value is None else float(value) for value in values]
