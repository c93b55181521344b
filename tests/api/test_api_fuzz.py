"""The slow schemathesis run (`make fuzz`, not part of `make test`): 200 examples per
operation in each phase, positive, negative and stateful, against a live server on
each backend's throwaway database. docs/api.md has its figures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.schemas import BaseSchema

from tests.api.test_api_schema import CHECKS, api_schema, credentials, run_every_operation

__all__ = ["api_schema"]  # the fixture, found by pytest through this name

pytestmark = pytest.mark.fuzz
EXAMPLES = 200


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_200_requests_per_operation_find_nothing(
    api_schema: BaseSchema, secrets: dict[str, str], mode: GenerationMode
) -> None:
    started = time.monotonic()
    sent = run_every_operation(api_schema, secrets["admin"], mode, EXAMPLES)
    operations = len(list(api_schema.get_all_operations()))
    print(f"{mode.value}: {sent} requests, {operations} operations, {since(started)}")


def test_sequences_of_requests_find_nothing(
    api_schema: BaseSchema, secrets: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {secrets['admin']}"}
    machine: Any = api_schema.as_state_machine()
    sent: list[str] = []

    class Stateful(machine):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"headers": credentials(case, headers)}

        def validate_response(self, response: Any, case: Case[Any], **kwargs: Any) -> None:
            sent.append(case.operation.label)
            case.validate_response(response, checks=CHECKS)

    started = time.monotonic()
    Stateful.run(
        settings=settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            stateful_step_count=10,
        )
    )
    print(f"stateful: {len(sent)} requests, {len(set(sent))} operations, {since(started)}")


def since(started: float) -> str:
    return f"{time.monotonic() - started:.0f} s"
