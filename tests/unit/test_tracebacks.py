"""The worker's cheap traceback text equals the standard library's, marker lines aside."""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable

import pytest

from deadletter.worker.tracebacks import format_failure

MARKERS = re.compile(r"^\s*[\^~]+\s*$")


def standard(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(exc)).splitlines(keepends=True)
    return "".join(line for line in lines if not MARKERS.match(line))


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("the action did not raise")


def plain() -> None:
    raise ValueError("bad value 42")


def caused() -> None:
    try:
        plain()
    except ValueError as exc:
        raise RuntimeError("wrapping") from exc


def in_handler() -> None:
    try:
        plain()
    except ValueError:
        dict[str, int]()["missing"]


def recursive(n: int = 0) -> None:
    if n > 50:
        raise RecursionError("deep")
    recursive(n + 1)


def with_note() -> None:
    exc = TimeoutError("slow upstream")
    exc.add_note("while fetching building-7")
    raise exc


def from_exec() -> None:
    exec(compile("1 / 0", "<generated>", "exec"))


def suppressed_context() -> None:
    try:
        plain()
    except ValueError:
        raise KeyError("replacement") from None


CASES = [plain, caused, in_handler, recursive, with_note, from_exec, suppressed_context]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_format_failure_is_the_standard_text_without_markers(case: Callable[[], None]) -> None:
    exc = raised(case)
    assert format_failure(exc) == standard(exc)


def test_exception_groups_are_left_to_the_standard_library() -> None:
    exc = raised(lambda: (_ for _ in ()).throw(ExceptionGroup("two", [ValueError(1), KeyError(2)])))
    assert format_failure(exc) == "".join(traceback.format_exception(exc))
