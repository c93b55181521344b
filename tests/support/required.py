"""What a test needs and cannot find: a skip on a developer's machine, a failure in CI
(`CI=true`), where a test that cannot run must not pass as skipped."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)
