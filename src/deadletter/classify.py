"""Error classification: ordered rules map a failure to an ErrorClass; first match wins.

`ErrorInfo` is what a rule can see of a failure: the exception's type names (its
whole class hierarchy), its message, and the HTTP status and Retry-After it carries.
`classify` is a pure function of an ErrorInfo and the rules, so the worker (deciding
whether to retry) and the DLQ handler (deciding where to route) agree.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus

from deadletter.errors import ConfigError
from deadletter.model import ErrorClass

DEFAULT_RULE = "default"

DEFAULT_RETRY: Mapping[ErrorClass, bool] = {
    ErrorClass.RECOVERABLE: True,
    ErrorClass.USER_ERROR: False,  # invalid input will not become valid by waiting
    ErrorClass.SYSTEM_ERROR: True,
    ErrorClass.UNKNOWN: True,
}

_PHRASES = "|".join(f"{s.value} {re.escape(s.phrase)}" for s in HTTPStatus)
# Each pattern names the status as such, so that "retried 3 times in 500 ms" yields nothing.
_STATUS_IN_MESSAGE = (
    re.compile(r"\bHTTP(?:/\d(?:\.\d)?)?(?:\s+error)?\s*[:=]?\s*(\d{3})\b", re.IGNORECASE),
    re.compile(r"\bstatus(?:[\s_-]?code)?\s*[:=]?\s*(\d{3})\b", re.IGNORECASE),
    re.compile(rf"\b(?=(?:{_PHRASES})\b)(\d{{3}})", re.IGNORECASE),
    re.compile(r"\b(\d{3}) (?:client|server) error\b", re.IGNORECASE),  # requests
)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What a rule can see of a failure."""

    type_names: tuple[str, ...]  # `module.QualName`, most specific first, `object` left out
    message: str
    http_status: int | None
    retry_after: float | None  # seconds

    @classmethod
    def from_exception(cls, exc: BaseException, *, now: float | None = None) -> ErrorInfo:
        """Read an exception; `now` (epoch seconds) resolves a Retry-After given as a date."""
        message = _message(exc)
        return cls(
            type_names=_type_names(type(exc)),
            message=message,
            http_status=_status_of(exc) or status_from_message(message),
            retry_after=_retry_after_of(exc, time.time() if now is None else now),
        )

    @classmethod
    def from_record(cls, error_type: str, message: str, http_status: int | None) -> ErrorInfo:
        """Rebuild from a stored attempt, which keeps only the most specific type."""
        return cls(
            type_names=(error_type,) if error_type else (),
            message=message,
            http_status=http_status if http_status is not None else status_from_message(message),
            retry_after=None,
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the classification table.

    A rule matches when ANY of its criteria matches: an entry of `exception_types`
    names a class in the error's hierarchy, the status is in `http_statuses`, or
    `message_pattern` is found in the message (always case-insensitively). A rule
    with no criteria matches everything. `retry=None` takes the class default.

    An exception type is a bare class name (`TimeoutError`), a full dotted name, or
    `package.Name` for a class a library defines in a submodule and re-exports
    (`httpx.TimeoutException` is `httpx._exceptions.TimeoutException`).
    """

    name: str
    error_class: ErrorClass
    exception_types: tuple[str, ...] = ()
    http_statuses: frozenset[int] = frozenset()
    message_pattern: re.Pattern[str] | None = None
    retry: bool | None = None

    def __post_init__(self) -> None:
        # So that a rule written in Python behaves like the same rule from the config file.
        pattern = self.message_pattern
        if pattern is not None and not pattern.flags & re.IGNORECASE:
            object.__setattr__(
                self, "message_pattern", re.compile(pattern.pattern, pattern.flags | re.IGNORECASE)
            )

    @property
    def is_catch_all(self) -> bool:
        return not (self.exception_types or self.http_statuses or self.message_pattern)

    def matches(self, error: ErrorInfo) -> bool:
        return (
            self.is_catch_all
            or _names_any(self.exception_types, error.type_names)
            or error.http_status in self.http_statuses
            or bool(self.message_pattern and self.message_pattern.search(error.message))
        )


@dataclass(frozen=True, slots=True)
class Classification:
    """The decision for one failure: its class, the rule that said so, and what to do."""

    error_class: ErrorClass
    rule: str
    retry: bool
    retry_after: float | None


def _rule(
    name: str,
    error_class: ErrorClass,
    *,
    types: tuple[str, ...] = (),
    statuses: tuple[int, ...] = (),
    pattern: str | None = None,
) -> Rule:
    compiled = re.compile(pattern, re.IGNORECASE) if pattern else None
    return Rule(name, error_class, types, frozenset(statuses), compiled)


TIMEOUT_TYPES = (
    # asyncio.TimeoutError and socket.timeout are aliases of TimeoutError since 3.11;
    # their own names still match records written by older workers.
    "TimeoutError",
    "asyncio.TimeoutError",
    "socket.timeout",
    "httpx.TimeoutException",
    "requests.Timeout",
    # The time limits of the job systems deadletter.integrations captures from.
    "billiard.exceptions.SoftTimeLimitExceeded",  # Celery's soft_time_limit
    "billiard.exceptions.TimeLimitExceeded",
    "rq.timeouts.JobTimeoutException",
    "dramatiq.middleware.time_limit.TimeLimitExceeded",
)
CONNECTION_TYPES = (
    "ConnectionResetError",
    "ConnectionError",
    "BrokenPipeError",
    "httpx.NetworkError",
    "aiohttp.ClientConnectionError",
)
VALIDATION_TYPES = (
    "ValidationError",
    "pydantic.ValidationError",
    "jsonschema.ValidationError",
    "deadletter.errors.InvalidInput",
)

_RECOVERABLE = ErrorClass.RECOVERABLE
_USER = ErrorClass.USER_ERROR
_SYSTEM = ErrorClass.SYSTEM_ERROR

# Evidence is weighed by how deliberate it is: the exception type the code chose, then
# the status the server sent, then words in the message. So a 503 saying "internal
# error" is RECOVERABLE, and "invalid input: timeout must be positive" is USER_ERROR.
DEFAULT_RULES: tuple[Rule, ...] = (
    _rule("timeout:type", _RECOVERABLE, types=TIMEOUT_TYPES),
    _rule("connection:type", _RECOVERABLE, types=CONNECTION_TYPES),
    _rule("worker-lost:type", _RECOVERABLE, types=("deadletter.errors.WorkerLost",)),
    _rule("invalid-input:type", _USER, types=VALIDATION_TYPES),
    _rule("rate-limit:status", _RECOVERABLE, statuses=(429,)),
    _rule("unavailable:status", _RECOVERABLE, statuses=(503, 504)),
    _rule("client-error:status", _USER, statuses=(400, 404, 422)),
    _rule("server-error:status", _SYSTEM, statuses=(500, 502)),
    _rule("invalid-input:message", _USER, pattern=r"invalid input|validation (?:error|failed)"),
    _rule("timeout:message", _RECOVERABLE, pattern=r"timed out|timeout"),
    _rule("rate-limit:message", _RECOVERABLE, pattern=r"rate limit|too many requests"),
    _rule("connection:message", _RECOVERABLE, pattern=r"connection reset|connection refused"),
    _rule("worker-lost:message", _RECOVERABLE, pattern=r"worker lost"),
    _rule("internal-error:message", _SYSTEM, pattern=r"internal (?:server )?error"),
)


def classify(error: ErrorInfo, rules: Sequence[Rule] = DEFAULT_RULES) -> Classification:
    """The first rule that matches decides; UNKNOWN under rule "default" if none does."""
    rule = next((r for r in rules if r.matches(error)), None)
    error_class = rule.error_class if rule else ErrorClass.UNKNOWN
    retry = rule.retry if rule and rule.retry is not None else DEFAULT_RETRY[error_class]
    return Classification(
        error_class=error_class,
        rule=rule.name if rule else DEFAULT_RULE,
        retry=retry,
        # A server's "come back later" is advice about a transient state, nothing else.
        retry_after=error.retry_after if error_class is ErrorClass.RECOVERABLE else None,
    )


def build_rules(custom: Sequence[Rule], *, replace_defaults: bool) -> tuple[Rule, ...]:
    """Custom rules are tried first; the defaults follow unless replaced."""
    return tuple(custom) if replace_defaults else (*custom, *DEFAULT_RULES)


# -- rules from the config file ---------------------------------------------------------

_CONFIG_KEYS = ("name", "class", "exception_types", "http_statuses", "message_pattern", "retry")


def rules_from_config(entries: Sequence[Mapping[str, object]]) -> tuple[Rule, ...]:
    """Build rules from `[[rules]]` tables; any mistake is a ConfigError naming the rule."""
    return tuple(_rule_from_config(index, entry) for index, entry in enumerate(entries))


def _rule_from_config(index: int, entry: Mapping[str, object]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(entry).__name__}")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    unknown = sorted(set(entry) - set(_CONFIG_KEYS))
    if unknown:
        known = ", ".join(_CONFIG_KEYS)
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; keys are: {known}")
    for key in ("name", "class"):
        if key not in entry:
            raise ConfigError(f"{where}: missing key {key!r}")
    return Rule(
        name=_text(where, "name", entry["name"]),
        error_class=_error_class(where, entry["class"]),
        exception_types=tuple(
            _text(where, "exception_types", t) for t in _list(where, entry, "exception_types")
        ),
        http_statuses=frozenset(_status(where, s) for s in _list(where, entry, "http_statuses")),
        message_pattern=_pattern(where, entry.get("message_pattern")),
        retry=_retry(where, entry.get("retry")),
    )


def _text(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def _error_class(where: str, value: object) -> ErrorClass:
    if isinstance(value, str) and value in ErrorClass.__members__:
        return ErrorClass[value]
    known = ", ".join(ErrorClass.__members__)
    raise ConfigError(f"{where}: class must be one of {known}, got {value!r}")


def _list(where: str, entry: Mapping[str, object], key: str) -> Sequence[object]:
    value = entry.get(key, ())
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
    return value


def _status(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ConfigError(f"{where}: http_statuses must hold integers 100-599, got {value!r}")
    return value


def _pattern(where: str, value: object) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(_text(where, "message_pattern", value), re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: message_pattern {value!r} is not a regex: {exc}") from exc


def _retry(where: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: retry must be true or false, got {value!r}")


# -- reading an exception -----------------------------------------------------------------


# Failures come from few exception classes: their names are worked out once each.
_TYPE_NAMES: dict[type, tuple[str, ...]] = {}


def _type_names(cls: type) -> tuple[str, ...]:
    names = _TYPE_NAMES.get(cls)
    if names is None:
        names = tuple(f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__ if c is not object)
        _TYPE_NAMES[cls] = names
    return names


@functools.lru_cache(maxsize=4096)  # few rules meet few exception classes, again and again
def _names_any(entries: tuple[str, ...], type_names: tuple[str, ...]) -> bool:
    return any(_names_type(entry, name) for entry in entries for name in type_names)


def _names_type(entry: str, type_name: str) -> bool:
    """Whether a rule's `entry` names the class `type_name` (see Rule)."""
    if entry == type_name:
        return True
    head, _, class_name = type_name.rpartition(".")
    entry_head, _, entry_name = entry.rpartition(".")
    if entry_name != class_name:
        return False
    return not entry_head or entry_head.split(".")[0] == head.split(".")[0]


def _attr(obj: object, name: str) -> object:
    # Some libraries raise from a property that has nothing to offer (httpx's
    # `RequestError.request` raises RuntimeError); the failure path must not fail.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def _valid_status(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return int(value)
    return None


def _status_of(exc: BaseException) -> int | None:
    response = _attr(exc, "response")
    candidates = (
        _attr(response, "status_code"),  # httpx, requests
        _attr(exc, "status_code"),
        _attr(exc, "status"),  # aiohttp, urllib
    )
    return next((s for s in map(_valid_status, candidates) if s is not None), None)


def status_from_message(message: str) -> int | None:
    """The HTTP status a message states as such ("HTTP 503", "503 Service Unavailable")."""
    for pattern in _STATUS_IN_MESSAGE:
        found = pattern.search(message)
        status = _valid_status(int(found.group(1))) if found else None
        if status is not None:
            return status
    return None


def _retry_after_of(exc: BaseException, now: float) -> float | None:
    sources = (
        _attr(exc, "retry_after"),
        _header(_attr(_attr(exc, "response"), "headers")),
        _header(_attr(exc, "headers")),
    )
    return next((s for s in (parse_retry_after(v, now) for v in sources) if s is not None), None)


def _header(headers: object) -> object:
    get = _attr(headers, "get")
    if not callable(get):
        return None
    try:
        # httpx, requests and aiohttp headers ignore case; a plain dict does not.
        return get("Retry-After") or get("retry-after")
    except Exception:
        return None


def parse_retry_after(value: object, now: float) -> float | None:
    """Seconds to wait, from a number or a Retry-After value (seconds or an HTTP date)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds = _retry_after_text(value.strip(), now)
    else:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _retry_after_text(value: str, now: float) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    # HTTP dates are GMT; "-0000" parses as naive, which would be read as local time.
    return when.replace(tzinfo=when.tzinfo or UTC).timestamp() - now
