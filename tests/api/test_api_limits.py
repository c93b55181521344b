"""Rate limits, `/healthz` and `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deadletter.app import App
from deadletter.config import ServeSettings, load_settings, settings_from_mapping
from tests.api.conftest import Server, ServerFactory, fail_many, running
from tests.conftest import POSTGRES
from tests.support.operator import fail


def test_a_caller_past_its_rate_gets_429_with_retry_after(
    start_server: ServerFactory, secrets: dict[str, str]
) -> None:
    server = start_server(serve=ServeSettings(rate_limit=0.5, rate_burst=3))
    with server.client(secrets["read"]) as client:
        codes = [client.get("/api/queue/dlq/stats").status_code for _ in range(4)]
        limited = client.get("/api/queue/dlq/stats")
    assert codes == [200, 200, 200, 429]
    # Two seconds for a whole request at 0.5 a second, less what has refilled since the
    # bucket ran dry (on a busy machine, more than a second).
    assert limited.headers["Retry-After"] in ("1", "2") and "too many" in limited.json()["detail"]
    with server.client(secrets["admin"]) as other:  # each token has its own allowance
        assert other.get("/api/queue/dlq/stats").status_code == 200
    with server.client() as anonymous:  # no token: limited by address, guessing included
        codes = [anonymous.get("/api/failures/x").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_the_rate_limit_is_configured_under_serve() -> None:
    settings = load_settings(
        environ={"DEADLETTER_SERVE_RATE_LIMIT": "inf", "DEADLETTER_SERVE_PORT": "9000"}
    )
    assert settings.serve.rate_limit == float("inf") and settings.serve.port == 9000
    assert settings.serve.host == "127.0.0.1"


def test_healthz_is_open_and_metrics_need_a_token(server: Server) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
        assert client.get("/metrics").status_code == 401


def test_metrics_count_jobs_dead_letters_backlog_and_handling_delay(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    fail_many(dlq_app, 2)
    fail(dlq_app, "reports.build", "invalid", "q1")
    with server.client(secrets["read"]) as client:
        answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert samples[("deadletter_jobs", (("queue", "charts"), ("state", "failed")))] == 2
    assert samples[("deadletter_jobs", (("queue", "reports"), ("state", "failed")))] == 1
    assert samples[("deadletter_dead_letters_total", (("error_class", "RECOVERABLE"),))] == 2
    assert samples[("deadletter_dead_letters_total", (("error_class", "USER_ERROR"),))] == 1
    assert samples[("deadletter_recovery_backlog", (("status", "pending"),))] == 2
    assert samples[("deadletter_dlq_failed_jobs", ())] == 3
    assert samples[("deadletter_dlq_handling_delay_seconds_gcount", ())] == 3
    assert samples[("deadletter_dlq_handling_delay_seconds_bucket", (("le", "+Inf"),))] == 3


@pytest.fixture
def closable_postgres(postgres_url: str) -> Iterator[str]:
    """A fresh database that the test may close to connections; opened again after."""
    name = postgres_url.rsplit("/", 1)[1]
    yield postgres_url
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true".encode())


def test_healthz_is_503_while_the_database_is_down(closable_postgres: str, tmp_path: Path) -> None:
    settings = settings_from_mapping(
        {"database_url": closable_postgres, "blob_url": f"{tmp_path}/blobs"}
    )
    name = closable_postgres.rsplit("/", 1)[1]
    with running(App(settings)) as server, server.client() as client:
        assert client.get("/healthz").status_code == 200
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false".encode())
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json() == {"status": "degraded", "database": "unreachable"}
