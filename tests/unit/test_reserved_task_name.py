"""The dead letters' task name is not for an application's task: its jobs would be
handled as dead letters, failures made up by whoever enqueues them."""

from __future__ import annotations

from pathlib import Path

import pytest

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import ConfigError
from deadletter.store.base import DEAD_LETTER_TASK


def test_an_app_task_cannot_take_the_dead_letters_name(tmp_path: Path) -> None:
    app = App(settings_from_mapping({"database_url": f"sqlite:///{tmp_path}/app.db"}))

    with pytest.raises(ConfigError, match="reserved for dead letters"):
        app.task(name=DEAD_LETTER_TASK)(lambda: None)

    assert DEAD_LETTER_TASK not in app.tasks
    app.close()
