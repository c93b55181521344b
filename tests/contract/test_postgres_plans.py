"""PostgreSQL plans the fenced batch updates as lookups by primary key, whatever ANALYZE
last saw (migration 0025).

The case that went wrong in the soak (docs/benchmarks.md): ANALYZE ran while no job was
running, then a worker leased a batch. The prepared statements' generic plans then
scanned the index of leases for every row of a batch, until the next ANALYZE. Here the
plans are read from auto_explain, forced generic, on the statements the store runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import pytest

from deadletter.model import Lease
from deadletter.store.base import Succeeded
from deadletter.store.dashboard import RUNNING_JOBS
from deadletter.store.postgres import (
    BEGIN_MANY,
    EXTEND,
    FINISH,
    NEXT_DUE,
    RELEASE,
    _finish_params,
)

JOBS = 20_000
RUNNING = 400
IDS = [f"j{n}" for n in range(1, RUNNING + 1)]
TOKENS = list(range(1, RUNNING + 1))

FILL = f"""
INSERT INTO queue_jobs (id, queue, task, payload, status, attempts, max_retries,
    dead_letter_queue, run_at, created_at, completed_at)
SELECT 'j' || n, 'q', 't', '{{}}', 'succeeded', 1, 3, 'q-dlq', 0, 0, 0
FROM generate_series(1, {JOBS}) AS n
"""
LEASE = f"""
UPDATE queue_jobs SET status = 'running', lease_token = substr(id, 2)::bigint,
    lease_expires_at = 100
WHERE substr(id, 2)::int <= {RUNNING}
"""

BATCH_STATEMENTS: dict[str, tuple[str, Sequence[Any] | Mapping[str, Any]]] = {
    "extend": (EXTEND, (1.0, IDS, TOKENS)),
    "begin": (BEGIN_MANY, {"ids": IDS, "tokens": TOKENS, "now": 1.0}),
    "release": (RELEASE, (1.0, IDS, TOKENS)),
    "finish": (
        FINISH,
        _finish_params(
            [Succeeded(Lease(i, t), 1.0) for i, t in zip(IDS, TOKENS, strict=True)], 1.0
        ),
    ),
}


@pytest.fixture
def analysed_while_idle(postgres_url: str) -> str:
    """A database whose statistics were taken with no job running, and which now holds a
    leased batch."""
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(FILL)
        pg.execute("ANALYZE queue_jobs")
        pg.execute(LEASE)
    return postgres_url


@pytest.fixture
def never_analysed(postgres_url: str) -> str:
    """A database as a benchmark or a new deployment has it: filled and leased, with no
    statistics yet (autovacuum has not run)."""
    with psycopg.connect(postgres_url, autocommit=True) as pg:
        pg.execute(FILL)
        pg.execute(LEASE)
    return postgres_url


def generic_plan(url: str, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> str:
    """The plan PostgreSQL runs `sql` with once it is prepared and cached generic."""
    plans: list[str] = []
    with psycopg.connect(url) as pg:
        pg.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        pg.execute("LOAD 'auto_explain'")
        pg.execute("SET auto_explain.log_min_duration = 0")
        pg.execute("SET plan_cache_mode = force_generic_plan")
        pg.execute("SET client_min_messages = log")
        pg.execute(sql, params, prepare=True)
        pg.rollback()
    return "\n".join(plan for plan in plans if "Query Text" in plan)


@pytest.mark.parametrize("name", sorted(BATCH_STATEMENTS))
def test_a_batch_statement_looks_its_jobs_up_by_id(analysed_while_idle: str, name: str) -> None:
    sql, params = BATCH_STATEMENTS[name]
    plan = generic_plan(analysed_while_idle, sql, params)
    assert "queue_jobs_pkey" in plan, plan
    assert "queue_jobs_leases" not in plan, plan


@pytest.mark.parametrize(
    ("sql", "params"),
    [(NEXT_DUE, {"queues": ["q"]}), (RUNNING_JOBS, ())],
    ids=["next due", "running jobs"],
)
def test_the_queries_of_lease_expiry_use_the_index_of_leases(
    analysed_while_idle: str, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> None:
    assert "queue_jobs_leases" in generic_plan(analysed_while_idle, sql, params)


@pytest.mark.parametrize("statistics", ["analysed_while_idle", "never_analysed"])
def test_the_begin_batch_reads_only_its_own_rows(
    request: pytest.FixtureRequest, statistics: str
) -> None:
    """Each access to queue_jobs in the begin batch is by primary key: joined as tables,
    the table without statistics was scanned for every running job (and the rows begun
    compared with the batch's row by row), twice the time of the whole update."""
    url = request.getfixturevalue(statistics)
    sql, params = BATCH_STATEMENTS["begin"]
    plan = generic_plan(url, sql, params)
    on_jobs = [line for line in plan.splitlines() if "Scan" in line and " on queue_jobs" in line]
    assert on_jobs, plan
    assert all("queue_jobs_pkey" in line or "Bitmap Heap Scan" in line for line in on_jobs), plan
    assert "Join Filter" not in plan, plan
