"""Strict input at the edge: bodies are typed strictly, and a corrected payload is held
to the limits of an enqueued one."""

from __future__ import annotations

import pytest

from deadletter.app import App
from tests.api.conftest import Server
from tests.support.operator import fail


@pytest.mark.parametrize(
    "body",
    [
        {"filter": {"since": True}},
        {"filter": {"until": "1700000000"}},
        {"filter": {"queue": 1}},
        {"filter": {"job_id": "job_1"}},
        {"all": "true"},
        {"all": 1},
        {"sample_size": "10"},
        {"sample_size": 10.0},
    ],
)
def test_a_body_value_of_the_wrong_json_type_is_refused(
    server: Server, secrets: dict[str, str], body: dict[str, object]
) -> None:
    with server.client(secrets["operate"]) as client:
        answer = client.post("/api/bulk/dry-run", json=body)
    assert answer.status_code == 422, answer.text


def test_enum_values_are_still_named_by_their_strings(
    server: Server, secrets: dict[str, str]
) -> None:
    with server.client(secrets["operate"]) as client:
        answer = client.post("/api/bulk/dry-run", json={"filter": {"error_class": "USER_ERROR"}})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_corrected_payload_is_held_to_the_enqueue_limits(
    dlq_app: App, server: Server, secrets: dict[str, str]
) -> None:
    job_id = fail(dlq_app, "charts.fetch", "tiles/1")
    deep: list[object] = []
    for _ in range(63):
        deep = [deep]
    with server.client(secrets["operate"]) as client:
        big = {"payload": {"args": ["x" * (1024 * 1024)]}}
        too_big = client.post(f"/api/failures/{job_id}/requeue", json=big)
        too_deep = client.post(
            f"/api/failures/{job_id}/requeue", json={"payload": {"args": [deep]}}
        )
    assert too_big.status_code == 422 and "over the limit" in too_big.text
    # Deeper than the body may be at all: refused as it is read.
    assert too_deep.status_code == 400 and "deeper than 64" in too_deep.text
    job = dlq_app.store.get_job(job_id)
    assert job is not None and job.payload == {"args": ["tiles/1"], "kwargs": {}}
