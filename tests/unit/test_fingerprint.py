"""Fingerprints: one key per cause, whatever the ids, numbers and line numbers."""

from __future__ import annotations

import random
import re
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deadletter.dlq.fingerprint import MESSAGE_LIMIT, fingerprint, normalise_message, top_frames


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("job 3f2b8a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b failed", "job <uuid> failed"),
        ("job job_0f3a9b2c4d5e6f708192a3b4c5d6e7f8 failed", "job job_<hex> failed"),
        ("object at 0x7f3a22c0 freed", "object at <hex> freed"),
        ("commit DEADBEEF12 and deadbeef", "commit <hex> and deadbeef"),
        ("mail to bob.smith+1@example.co.uk bounced", "mail to <email> bounced"),
        (
            "GET https://api.test/v1/items?page=3&id=9 failed",
            "GET https://api.test/v<num>/items?<query> failed",
        ),
        ("at 2024-05-01T10:22:03.123+02:00 and 2024-05-01", "at <time> and <time>"),
        ("no user 'bob' in \"prod\"", "no user <str> in <str>"),
        ("can't reach the user's inbox", "can't reach the user's inbox"),
        ("took 30.25s after 3 tries", "took <num>s after <num> tries"),
        ("order 12345678901 missing", "order <num> missing"),
        ("  many \n\t spaces  ", "many spaces"),
    ],
)
def test_normalise_message(message: str, normalised: str) -> None:
    assert normalise_message(message) == normalised


def test_structured_values_are_replaced_before_their_parts() -> None:
    # Were numbers replaced first, a UUID would become "<num>f<num>b..." and vary.
    one = normalise_message(f"id {uuid.UUID(int=1)} at 2024-01-01 10:00:00")
    other = normalise_message(f"id {uuid.uuid4()} at 2031-12-31 23:59:59")
    assert one == other == "id <uuid> at <time>"


def test_long_messages_are_truncated() -> None:
    assert normalise_message("word " * 200) == ("word " * 60)[: MESSAGE_LIMIT - 1]


@given(st.text())
def test_normalise_message_is_bounded_and_idempotent(message: str) -> None:
    once = normalise_message(message)
    assert len(once) <= MESSAGE_LIMIT
    assert normalise_message(once) == once


# -- frames -----------------------------------------------------------------------------------


def _parse(text: str) -> None:
    raise ValueError(f"cannot parse {text!r}")


def _load(text: str) -> None:
    _parse(text)


def _handle(text: str) -> None:
    try:
        _load(text)
    except ValueError as exc:
        raise KeyError(text) from exc


def formatted(function: Callable[..., object], *args: object) -> str:
    """The traceback `function(*args)` raises, formatted as a worker records it."""
    with pytest.raises(Exception) as caught:
        function(*args)
    return "".join(traceback.format_exception(caught.value))


def test_top_frames_are_innermost_first_without_line_numbers() -> None:
    text = formatted(_load, "x")
    assert top_frames(text) == (
        "test_fingerprint.py:_parse",
        "test_fingerprint.py:_load",
        "test_fingerprint.py:formatted",
    )
    assert top_frames(text, count=1) == ("test_fingerprint.py:_parse",)
    assert top_frames(text, count=0) == ()


def test_top_frames_of_a_chain_come_from_the_exception_finally_raised() -> None:
    text = formatted(_handle, "x")
    assert "The above exception was the direct cause" in text
    assert top_frames(text, count=2) == (
        "test_fingerprint.py:_handle",
        "test_fingerprint.py:formatted",
    )


def _gather() -> None:
    errors: list[Exception] = []
    for function in (_parse, _load):
        try:
            function("x")
        except ValueError as exc:
            errors.append(exc)
    raise ExceptionGroup("both failed", errors)


def test_top_frames_of_an_exception_group_are_its_own() -> None:
    text = formatted(_gather)
    assert top_frames(text, count=2) == (
        "test_fingerprint.py:_gather",
        "test_fingerprint.py:formatted",
    )


def test_top_frames_take_the_basename_of_any_path() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "C:\\app\\jobs\\billing.py", line 10, in charge\n'
        '  File "/srv/app/.venv/lib/httpx/_client.py", line 99, in send\n'
        "httpx.ReadTimeout: timed out\n"
    )
    assert top_frames(text) == ("_client.py:send", "billing.py:charge")


def test_no_traceback_has_no_frames() -> None:
    assert top_frames("") == ()
    assert top_frames("ValueError: nothing else") == ()


# -- fingerprints ------------------------------------------------------------------------------

TIMEOUT_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/tasks.py", line 12, in sync_user\n'
    '  File "/app/client.py", line 40, in get\n'
    "TimeoutError: timed out\n"
)


def timeout_message(rng: random.Random) -> str:
    job = uuid.UUID(int=rng.getrandbits(128), version=4)
    return (
        f"GET https://api.test/v1/users/{rng.randrange(10**9)}?trace={job.hex}"
        f" timed out after {rng.uniform(0, 120):.3f}s (job job_{job.hex}, try {rng.randrange(9)})"
    )


def test_fingerprint_is_sixteen_hex_characters() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint("builtins.TimeoutError", "x", None))


def test_ten_thousand_timeouts_of_one_endpoint_are_one_group() -> None:
    rng = random.Random(7)
    keys = {
        fingerprint("builtins.TimeoutError", timeout_message(rng), TIMEOUT_TRACEBACK)
        for _ in range(10_000)
    }
    assert len(keys) == 1


@given(
    job=st.uuids(),
    user=st.integers(min_value=0),
    seconds=st.floats(min_value=0, max_value=1e6),
    when=st.datetimes(),
)
def test_fingerprint_ignores_ids_numbers_and_times(
    job: uuid.UUID, user: int, seconds: float, when: datetime
) -> None:
    message = f"user {user} job {job} failed after {seconds:.2f}s at {when}"
    reference = "user 1 job 00000000-0000-0000-0000-000000000000 failed after 1.00s at 2020-01-01"
    assert fingerprint("KeyError", message, TIMEOUT_TRACEBACK) == fingerprint(
        "KeyError", reference, TIMEOUT_TRACEBACK
    )


def test_fingerprint_ignores_line_numbers() -> None:
    moved = TIMEOUT_TRACEBACK.replace("line 12", "line 112").replace("line 40", "line 4")
    key = fingerprint("builtins.TimeoutError", "timed out", TIMEOUT_TRACEBACK)
    assert fingerprint("builtins.TimeoutError", "timed out", moved) == key


def test_different_causes_have_different_fingerprints() -> None:
    key = fingerprint("builtins.TimeoutError", "timed out", TIMEOUT_TRACEBACK)
    other_frames = TIMEOUT_TRACEBACK.replace("in get", "in post")
    assert fingerprint("builtins.ConnectionResetError", "timed out", TIMEOUT_TRACEBACK) != key
    assert fingerprint("builtins.TimeoutError", "connection reset", TIMEOUT_TRACEBACK) != key
    assert fingerprint("builtins.TimeoutError", "timed out", other_frames) != key
    assert fingerprint("builtins.TimeoutError", "timed out", None) != key


def test_parts_cannot_run_into_each_other() -> None:
    assert fingerprint("ab", "c", None) != fingerprint("a", "bc", None)
