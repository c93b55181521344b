from pathlib import Path
from typing import Any

import pytest

from deadletter.app import App
from deadletter.config import QueuePolicy, load_settings
from deadletter.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deadletter.toml"
    path.write_text(text)
    return path


def test_defaults_use_an_embedded_sqlite_file(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.database_url == "sqlite:///.deadletter/deadletter.db"
    assert settings.worker.concurrency == 2
    assert settings.policy("chart-processing") == QueuePolicy()
    assert settings.policy("chart-processing").dlq_for("chart-processing") == "chart-processing-dlq"


def test_file_in_working_directory_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        'database_url = "sqlite:///x.db"\n[worker]\nconcurrency = 4\n'
        '[queues.chart-processing]\nmax_retries = 5\ndead_letter_queue = "charts-dead"\n',
    )
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.database_url == "sqlite:///x.db"
    assert settings.worker.concurrency == 4
    policy = settings.policy("chart-processing")
    assert (policy.max_retries, policy.dlq_for("chart-processing")) == (5, "charts-dead")


def test_environment_overrides_file(tmp_path: Path) -> None:
    write(tmp_path, "[worker]\nconcurrency = 4\n")
    environ = {
        "DEADLETTER_WORKER_CONCURRENCY": "8",
        "DEADLETTER_WORKER_QUEUES": "a, b",
        "DEADLETTER_DATABASE_URL": "postgresql://localhost/x",
        "OTHER": "ignored",
    }
    settings = load_settings(environ=environ, cwd=tmp_path)
    assert settings.worker.concurrency == 8
    assert settings.worker.queues == ("a", "b")
    assert settings.database_url == "postgresql://localhost/x"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("databse_url = 'x'\n", "databse_url"),
        ("[worker]\nconcurency = 2\n", "concurency"),
        ("[queues.q]\nmax_retry = 2\n", "max_retry"),
        ("[worker]\nconcurrency = 'many'\n", "concurrency"),
        ("[queues.q]\njitter = 'sometimes'\n", "jitter"),
        ("[queues.q]\nretention_seconds = -1\n", "retention_seconds"),
        ("[queues.q]\nretention_seconds = nan\n", "retention_seconds"),
    ],
)
def test_bad_keys_and_values_are_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(write(tmp_path, text), environ={})


def test_unknown_environment_variables_are_named_once_and_ignored(tmp_path: Path) -> None:
    # A typo, a deploy script's variable, and what Kubernetes sets beside a Service
    # named `deadletter`: none of them may stop a command.
    environ = {
        "DEADLETTER_WORKER_THREADS": "3",
        "DEADLETTER_GIT_SHA": "abc123",
        "DEADLETTER_SERVICE_HOST": "10.0.0.7",
        "DEADLETTER_PORT": "tcp://10.0.0.7:8787",
        "DEADLETTER_PORT_8787_TCP_ADDR": "10.0.0.7",
        "DEADLETTER_APP": "myjobs:app",
        "DEADLETTER_WORKER_CONCURRENCY": "5",
    }
    warnings: list[str] = []
    settings = load_settings(environ=environ, cwd=tmp_path, warn=warnings.append)
    assert settings.worker.concurrency == 5
    assert len(warnings) == 1
    for name in environ.keys() - {"DEADLETTER_APP", "DEADLETTER_WORKER_CONCURRENCY"}:
        assert name in warnings[0]
    assert "DEADLETTER_APP" not in warnings[0]


def test_known_environment_variable_with_a_bad_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        load_settings(environ={"DEADLETTER_WORKER_CONCURRENCY": "many"}, cwd=tmp_path)


def test_only_the_file_holds_tables(tmp_path: Path) -> None:
    warnings: list[str] = []
    settings = load_settings(
        environ={"DEADLETTER_QUEUES": "x", "DEADLETTER_WORKER": "y"},
        cwd=tmp_path,
        warn=warnings.append,
    )
    assert settings.queues == {} and "DEADLETTER_QUEUES" in warnings[0]


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_invalid_toml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[worker\n"), environ={})


def test_a_tasks_retry_settings_win_over_its_queues_and_the_rest_stay(tmp_path: Path) -> None:
    write(tmp_path, "[queues.charts]\nmax_retries = 5\nbackoff_base = 2.0\nbackoff_max = 60.0\n")
    app = App(load_settings(environ={}, cwd=tmp_path))

    @app.task(queue="charts", name="tiles", max_retries=1, retry_backoff=0.5, retry_jitter=False)
    def tiles() -> None: ...

    queue = app.policy("charts")
    assert app.policy("charts", "unknown.task") == queue == app.policy("charts", None)
    mine = app.policy("charts", "tiles")
    assert (mine.max_retries, mine.backoff_base, mine.backoff_max, mine.jitter) == (
        1,
        0.5,
        60.0,
        False,
    )


@pytest.mark.parametrize("option", ["max_retries", "retry_backoff", "retry_backoff_max"])
@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_a_bad_task_retry_setting_is_named(tmp_path: Path, option: str, value: float) -> None:
    app = App(load_settings(environ={}, cwd=tmp_path))
    with pytest.raises(ConfigError, match=f"{option} of task 'bad' must be 0 or more"):
        register: Any = app.task
        register(name="bad", **{option: value})(lambda: None)
