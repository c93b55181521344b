"""A database URL of no supported scheme is told in one line that names both kinds."""

from __future__ import annotations

import pytest

from deadletter.errors import ConfigError
from deadletter.store import open_store


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1/jobs", "/var/lib/deadletter.db"])
def test_a_url_of_another_scheme_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///.* or postgresql://") as refused:
        open_store(url)
    assert repr(url) in str(refused.value)
