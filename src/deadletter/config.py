"""Settings from `deadletter.toml` and `DEADLETTER_*` environment variables.

Precedence, lowest first: defaults, the TOML file, the environment, explicit
overrides from the command line. A key this module does not know is an error
that names it: a typo must never be silently ignored.

Environment names: top-level keys are `DEADLETTER_<KEY>`, keys of a section are
`DEADLETTER_<SECTION>_<KEY>` (e.g. `DEADLETTER_WORKER_CONCURRENCY`). Per-queue
policies live only in the file, under `[queues."<name>"]`.

The environment is shared with everything else on the machine: a deploy script's
`DEADLETTER_GIT_SHA`, or the `DEADLETTER_SERVICE_HOST` and `DEADLETTER_PORT` that
Kubernetes gives every pod beside a Service named `deadletter`. So an unknown
`DEADLETTER_*` variable is named in one warning and ignored, while an unknown key in
the file, which only deadletter reads, stays an error.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deadletter.errors import ConfigError

CONFIG_FILE_NAME = "deadletter.toml"
ENV_PREFIX = "DEADLETTER_"
DEFAULT_HOME = Path(".deadletter")

log = logging.getLogger("deadletter.config")

# `DEADLETTER_*` variables that are not settings: the command line's options read them
# (`--app`, `--config`). tests/cli/test_cli_startup.py checks that every variable an
# option declares is here or a setting.
COMMAND_LINE_VARIABLES = frozenset({"DEADLETTER_APP", "DEADLETTER_CONFIG"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Retry and dead-letter policy of one queue (the seed's wrangler queue config)."""

    max_retries: int = 3
    dead_letter_queue: str = ""
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    backoff_factor: float = 2.0
    jitter: bool = True
    retry_user_errors: bool = False
    # How long succeeded jobs (and, on a DLQ, handled dead letters) stay before the
    # workers prune them (worker/prune.py); 0 keeps none. Failures stay until archived.
    retention_seconds: float = 86400.0

    def __post_init__(self) -> None:
        if not self.retention_seconds >= 0:  # NaN too: it would keep or prune at random
            raise ConfigError(f"retention_seconds must be 0 or more, got {self.retention_seconds}")

    def dlq_for(self, queue: str) -> str:
        return self.dead_letter_queue or f"{queue}-dlq"

    def for_task(
        self,
        *,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        jitter: bool | None = None,
    ) -> QueuePolicy:
        """This policy with a task's own settings (those not None) in place of the queue's."""
        return replace(
            self,
            max_retries=self.max_retries if max_retries is None else max_retries,
            backoff_base=self.backoff_base if backoff_base is None else backoff_base,
            backoff_max=self.backoff_max if backoff_max is None else backoff_max,
            jitter=self.jitter if jitter is None else jitter,
        )


class PolicyOf(Protocol):
    """The policy of a queue, with a task's own settings when `task` names one (App.policy)."""

    def __call__(self, queue: str, task: str | None = None, /) -> QueuePolicy: ...


# Shared, since it is frozen: the worker asks for a policy on every outcome.
DEFAULT_POLICY = QueuePolicy()


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    queues: tuple[str, ...] = ()
    concurrency: int = 2
    batch_size: int = 200
    lease_seconds: float = 30.0
    grace_seconds: float = 10.0
    poll_interval: float = 0.5
    task_timeout: float = 300.0
    # Live workers (`deadletter workers`): how often a worker writes its presence, and
    # how long after its last heartbeat a silent one no longer counts as alive.
    heartbeat_seconds: float = 5.0
    gone_after_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class DlqSettings:
    """The dead-letter handler: routing, delivery, alert deduplication, its log."""

    alert_urls: tuple[str, ...] = ()
    user_url_template: str = ""
    alert_window_seconds: float = 900.0
    log_file: str = str(DEFAULT_HOME / "dlq.log")
    route_recoverable: str = "recovery"
    route_user_error: str = "notify_user"
    route_system_error: str = "alert_ops"
    route_unknown: str = "review"
    replace_default_rules: bool = False
    redact_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ThresholdSettings:
    """The seed's key metrics: a metric fires when it is above (not at) its threshold."""

    last_24h: float = 10
    avg_retries: float = 2.5
    pending_recovery: float = 5
    alert_window_seconds: float = 3600.0
    interval_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SentrySettings:
    """Failed attempts sent to Sentry (the extra `deadletter[sentry]`), off while `dsn` is
    empty. `report`: "attempts" sends each failed attempt, "dead_letters" only those that
    dead-letter their job."""

    dsn: str = ""
    report: str = "attempts"
    environment: str = ""


@dataclass(frozen=True, slots=True)
class OtelSettings:
    """OpenTelemetry traces (the extra `deadletter[otel]`), off unless `enabled`: the
    trace context of `enqueue` goes with the job, each run is a span."""

    enabled: bool = False


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """`deadletter serve`: where the HTTP API listens, and how fast one caller may ask.

    `rate_limit` requests a second are allowed per token (per client address for
    requests without a valid token), `rate_burst` at once; `inf` turns limiting off.
    `allowed_hosts` are the `Host` values answered besides loopback ones (`localhost`,
    `127.0.0.1`, `[::1]`): a page in a browser that rebinds its own name to this
    machine sends its own name, and is refused. `*` answers every name."""

    host: str = "127.0.0.1"
    port: int = 8787
    rate_limit: float = 20.0
    rate_burst: int = 100
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_HOME / 'deadletter.db'}"
    blob_url: str = str(DEFAULT_HOME / "forensics")
    s3_endpoint_url: str = ""
    payload_limit_bytes: int = 1024 * 1024
    # Where captured failures of Celery, RQ or Dramatiq wait while the database is away,
    # and how many batches it may hold (deadletter.integrations.spool).
    spool_dir: str = str(DEFAULT_HOME / "spool")
    spool_limit: int = 10_000
    # How `worker` and `serve` write their log: "text", or "json" (one object a line).
    log_format: str = "text"
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    dlq: DlqSettings = field(default_factory=DlqSettings)
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    sentry: SentrySettings = field(default_factory=SentrySettings)
    otel: OtelSettings = field(default_factory=OtelSettings)
    queues: Mapping[str, QueuePolicy] = field(default_factory=dict)
    rules: tuple[Mapping[str, Any], ...] = ()
    redact_patterns: Mapping[str, str] = field(default_factory=dict)
    # `[schedules.<name>]` tables, read into schedules by deadletter/schedules.py.
    schedules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def policy(self, queue: str) -> QueuePolicy:
        return self.queues.get(queue) or DEFAULT_POLICY


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    warn: Callable[[str], None] = log.warning,
) -> Settings:
    """Read the file (given, or `deadletter.toml` in `cwd` if present) and the environment.
    `DEADLETTER_*` variables that are neither settings nor the command line's are named
    to `warn`, once."""
    data = _read_file(config_file, cwd or Path.cwd())
    ignored = _merge_environment(data, os.environ if environ is None else environ)
    unknown = sorted(set(ignored) - COMMAND_LINE_VARIABLES)
    if unknown:
        warn(
            f"ignoring environment variable{'s' if len(unknown) > 1 else ''}"
            f" {', '.join(unknown)}: not a deadletter setting (docs/configuration.md lists them)"
        )
    return settings_from_mapping(data, source=str(config_file or CONFIG_FILE_NAME))


def settings_from_mapping(data: Mapping[str, Any], *, source: str = "settings") -> Settings:
    raw = dict(data)
    queues = _table(raw.pop("queues", {}), f"{source}: [queues]")
    rules = raw.pop("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, Mapping) for r in rules):
        raise ConfigError(f"{source}: rules must be an array of tables ([[rules]])")
    patterns = _table(raw.pop("redact_patterns", {}), f"{source}: [redact_patterns]")
    schedules = _table(raw.pop("schedules", {}), f"{source}: [schedules]")
    settings = _build(Settings, raw, source)
    policies = {
        name: _build(QueuePolicy, policy, f"{source}: [queues.{name}]")
        for name, policy in queues.items()
    }
    return replace(
        settings,
        queues=policies,
        rules=tuple(rules),
        redact_patterns={str(k): str(v) for k, v in patterns.items()},
        schedules={str(k): v for k, v in schedules.items()},
    )


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, got {value!r}")
    return value


def _read_file(config_file: Path | None, cwd: Path) -> dict[str, Any]:
    path = config_file or cwd / CONFIG_FILE_NAME
    if config_file is None and not path.exists():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _merge_environment(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Put the settings among `DEADLETTER_*` variables into `data`; return the names of
    the others."""
    sections = _environment_keys()
    ignored = []
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        section, _, rest = key.partition("_")
        if section and rest in sections.get(section, ()):
            data.setdefault(section, {})[rest] = value
        elif key in sections[""]:
            data[key] = value
        else:
            ignored.append(name)
    return ignored


def _environment_keys() -> dict[str, set[str]]:
    """The keys the environment may set, by section ("" for the top level): every field
    but the tables and lists of tables, which only the file can hold."""
    keys: dict[str, set[str]] = {"": set()}
    for name, hint in typing.get_type_hints(Settings).items():
        if dataclasses.is_dataclass(hint):
            keys[name] = {f.name for f in fields(hint)}
        elif hint in (str, int, float, bool):
            keys[""].add(name)
    return keys


def _build(cls: type[T], values: object, where: str) -> T:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a table, got {values!r}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(known))}"
            )
        kwargs[key] = _coerce(hints[key], value, f"{where}: {key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if hint is bool:
        return _coerce_bool(value, where)
    if hint in (int, float, str):
        return _coerce_scalar(hint, value, where)
    if origin is types.UnionType:
        return value
    raise ConfigError(f"{where}: cannot read a value of type {hint}")


def _coerce_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _coerce_scalar(hint: type, value: Any, where: str) -> Any:
    if isinstance(value, bool | dict | list):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    try:
        return hint(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from exc
