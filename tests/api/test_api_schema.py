"""The OpenAPI document is complete and correct: schemathesis, over a live server, finds
no server error and no answer that its schema does not describe; and the committed
docs/openapi.json is the document the code declares."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi import checks

from deadletter.api import openapi
from deadletter.app import App
from deadletter.ops.review import KEYS
from deadletter.web import create_server
from tests.api.conftest import UNLIMITED, Server, running
from tests.support.operator import fail

# Examples per operation and mode: enough to find what the schema allows and the
# server cannot answer, few enough to stay within seconds.
EXAMPLES = 20
COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.json"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
# What an invalid request may get: schemathesis' list, and 421, the `Host` check's refusal
# of a generated `host` header, which comes before the rest of the request is read.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "415", "421", "422", "428", "429"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "5xx"]}}}
)


def test_the_committed_openapi_document_is_current() -> None:
    assert COMMITTED.read_text() == openapi.text(), (
        "docs/openapi.json is stale: run"
        " `.venv/bin/python -m deadletter.api.openapi > docs/openapi.json`"
    )


def test_the_command_that_writes_the_document_prints_it() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "deadletter.api.openapi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert printed.stdout == openapi.text()


@pytest.fixture
def api_schema(dlq_app: App, server: Server) -> BaseSchema:
    """The live server's document, over failures of every class to act on."""
    fail(dlq_app, "charts.fetch", "tiles/1")
    fail(dlq_app, "reports.build", "mystery", "q2")
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=CONFIG)


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_no_request_finds_a_server_error_or_an_undocumented_answer(
    api_schema: BaseSchema, secrets: dict[str, str], mode: GenerationMode
) -> None:
    run_every_operation(api_schema, secrets["admin"], mode, EXAMPLES)


def run_every_operation(
    api_schema: BaseSchema, admin: str, mode: GenerationMode, examples: int
) -> int:
    """Up to `examples` requests of `mode` to each operation, every answer checked; how
    many were sent (fewer where an operation has fewer distinct requests to make).

    Driven by hand, an operation at a time: schemathesis' pytest plugin does not run
    under pytest 9. Every operation gets its own bounded set of examples."""
    headers = {"Authorization": f"Bearer {admin}"}
    sent = 0
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case[Any]) -> None:
            nonlocal sent
            sent += 1
            case.call_and_validate(headers=credentials(case, headers), checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # An operation with no parameter and no body has no invalid request to make.
            assert mode is GenerationMode.NEGATIVE, operation.label
    return sent


def credentials(case: Case[Any], headers: dict[str, str]) -> dict[str, str]:
    """Our token, unless the case's own headers are its invalid part: adding the token
    back would undo a dropped or mangled `Authorization` and turn a request meant to be
    refused into a valid one (schemathesis 4.32 generates such cases)."""
    header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return {} if header is not None and header.mode is GenerationMode.NEGATIVE else headers


@pytest.mark.parametrize(
    ("path", "key"),
    [("/api/failures", "2"), ("/api/recovery", "2"), ("/api/review", "2"), ("/api/audit", '"x"')],
)
def test_a_cursor_of_another_list_is_refused_not_a_server_error(
    server: Server, secrets: dict[str, str], path: str, key: str
) -> None:
    # Well-formed, so beyond what random strings reach: a cursor whose tie-breaker has
    # the wrong type, which PostgreSQL would compare with an error.
    forged = base64.urlsafe_b64encode(f"[1,{key}]".encode()).decode().rstrip("=")
    with server.client(secrets["read"]) as client:
        answer = client.get(path, params={"cursor": forged})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["cursor"]


MALFORMED = [
    "",
    "%%%",
    base64.urlsafe_b64encode(b'[1e999,"x","t"]').decode(),
    base64.urlsafe_b64encode(b'[1,"x"]').decode(),
    "A" * 501,
]


@pytest.mark.parametrize("path", ["/api/failures", "/api/recovery", "/api/review", "/api/audit"])
def test_a_malformed_cursor_is_422_naming_the_cursor(
    server: Server, secrets: dict[str, str], path: str
) -> None:
    with server.client(secrets["read"]) as client:
        for cursor in MALFORMED:
            answer = client.get(path, params={"cursor": cursor})
            assert answer.status_code == 422, (cursor, answer.text)
            assert answer.json()["detail"][0]["loc"][-1] == "cursor"


def test_a_cursor_is_bound_to_its_list_and_its_filters(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    for n in range(3):
        fail(dlq_app, "charts.fetch", f"tiles/{n}")
    with server.client(secrets["read"]) as client:
        fetches: dict[str, str | int] = {"limit": 1, "task": "charts.fetch"}
        first = client.get("/api/failures", params=fetches).json()
        cursor = first["next_cursor"]
        same = client.get("/api/failures", params={**fetches, "cursor": cursor})
        misuses = [
            client.get("/api/failures", params={"limit": 1, "cursor": cursor}),
            client.get("/api/failures", params={"task": "reports.build", "cursor": cursor}),
            client.get("/api/recovery", params={"cursor": cursor}),
        ]
    assert same.status_code == 200 and same.json()["failures"][0] != first["failures"][0]
    for answer in misuses:
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["cursor"]
        assert "another list or filter" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ["/failures", "/recovery", "/review", "/audit"])
def test_the_dashboards_lists_refuse_a_bad_cursor_with_a_page_not_a_server_error(
    dlq_app: App, secrets: dict[str, str], path: str
) -> None:
    fail(dlq_app, "charts.fetch", "tiles/1")
    app = App(replace(dlq_app.settings, serve=UNLIMITED))
    with running(app, build=create_server) as server, httpx.Client(base_url=server.url) as web:
        assert web.post("/login", data={"token": secrets["read"]}).status_code == 303
        for cursor in [*MALFORMED, KEYS.cursor((1.0, "dl-x"))]:  # the last: a review cursor
            answer = web.get(path, params={"cursor": cursor})
            assert answer.status_code == 422 and "cursor" in answer.text, (path, cursor)
