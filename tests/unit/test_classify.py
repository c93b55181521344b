"""Error classification: the default table, reading exceptions, rule order, config."""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import formatdate

import httpx
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deadletter.classify import (
    DEFAULT_RULES,
    Classification,
    ErrorInfo,
    Rule,
    build_rules,
    classify,
    parse_retry_after,
    rules_from_config,
    status_from_message,
)
from deadletter.errors import ConfigError, InvalidInput, JobTimeout, WorkerLost
from deadletter.model import ErrorClass

NOW = 1_700_000_000.0
RECOVERABLE, USER, SYSTEM, UNKNOWN = (
    ErrorClass.RECOVERABLE,
    ErrorClass.USER_ERROR,
    ErrorClass.SYSTEM_ERROR,
    ErrorClass.UNKNOWN,
)


def verdict(exc: BaseException) -> Classification:
    return classify(ErrorInfo.from_exception(exc, now=NOW))


def failure(message: str = "", status: int | None = None, *types: str) -> ErrorInfo:
    return ErrorInfo(types, message, status, None)


def httpx_error(status: int, headers: Mapping[str, str] | None = None) -> httpx.HTTPStatusError:
    """The error httpx itself raises for a response with this status."""
    request = httpx.Request("GET", "https://api.example.test/items/42")
    response = httpx.Response(status, request=request, headers=headers)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        response.raise_for_status()
    return caught.value


# -- stand-ins for libraries that are not dependencies, named as the real ones are --------


class FakeResponse:
    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})


class RequestsHTTPError(OSError):
    """Shaped like requests.HTTPError: the status is on `.response.status_code`."""

    def __init__(self, message: str, response: FakeResponse) -> None:
        super().__init__(message)
        self.response = response


class RequestsTimeout(OSError):
    pass


RequestsTimeout.__module__, RequestsTimeout.__qualname__ = "requests.exceptions", "Timeout"


class AiohttpResponseError(Exception):
    """Shaped like aiohttp.ClientResponseError: the status is on `.status`."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}, message='upstream said no'")
        self.status = status
        self.headers = headers


class JsonschemaValidationError(Exception):
    pass


JsonschemaValidationError.__module__ = "jsonschema.exceptions"
JsonschemaValidationError.__qualname__ = "ValidationError"


def pydantic_error() -> pydantic.ValidationError:
    class Order(pydantic.BaseModel):
        quantity: int

    with pytest.raises(pydantic.ValidationError) as caught:
        Order.model_validate({"quantity": "many"})
    return caught.value


# -- the default table, row by row ---------------------------------------------------------

TABLE: list[tuple[str, BaseException, ErrorClass, str]] = [
    ("TimeoutError", TimeoutError(), RECOVERABLE, "timeout:type"),
    ("deadletter JobTimeout", JobTimeout(), RECOVERABLE, "timeout:type"),
    ("httpx.ReadTimeout", httpx.ReadTimeout("read"), RECOVERABLE, "timeout:type"),
    ("requests.Timeout", RequestsTimeout("read"), RECOVERABLE, "timeout:type"),
    ("ConnectionResetError", ConnectionResetError(104, "reset"), RECOVERABLE, "connection:type"),
    ("ConnectionRefusedError", ConnectionRefusedError(), RECOVERABLE, "connection:type"),
    ("BrokenPipeError", BrokenPipeError(), RECOVERABLE, "connection:type"),
    ("httpx.ConnectError", httpx.ConnectError("no route"), RECOVERABLE, "connection:type"),
    ("WorkerLost", WorkerLost("lease expired"), RECOVERABLE, "worker-lost:type"),
    ("InvalidInput", InvalidInput("no email"), USER, "invalid-input:type"),
    ("pydantic", pydantic_error(), USER, "invalid-input:type"),
    ("jsonschema", JsonschemaValidationError("1 is not a string"), USER, "invalid-input:type"),
    ("httpx 429", httpx_error(429), RECOVERABLE, "rate-limit:status"),
    ("httpx 503", httpx_error(503), RECOVERABLE, "unavailable:status"),
    ("httpx 504", httpx_error(504), RECOVERABLE, "unavailable:status"),
    ("httpx 400", httpx_error(400), USER, "client-error:status"),
    ("httpx 404", httpx_error(404), USER, "client-error:status"),
    ("httpx 422", httpx_error(422), USER, "client-error:status"),
    ("httpx 500", httpx_error(500), SYSTEM, "server-error:status"),
    ("httpx 502", httpx_error(502), SYSTEM, "server-error:status"),
    ("requests 503", RequestsHTTPError("x", FakeResponse(503)), RECOVERABLE, "unavailable:status"),
    ("aiohttp 404", AiohttpResponseError(404), USER, "client-error:status"),
    ("says invalid", RuntimeError("Invalid input: no sku"), USER, "invalid-input:message"),
    ("says validation", RuntimeError("validation failed"), USER, "invalid-input:message"),
    ("says timed out", RuntimeError("query timed out"), RECOVERABLE, "timeout:message"),
    ("says rate limit", RuntimeError("Rate limit exceeded"), RECOVERABLE, "rate-limit:message"),
    ("says too many", RuntimeError("too many requests"), RECOVERABLE, "rate-limit:message"),
    ("says reset", RuntimeError("connection reset by peer"), RECOVERABLE, "connection:message"),
    ("says lost", RuntimeError("worker lost"), RECOVERABLE, "worker-lost:message"),
    ("says internal", RuntimeError("Internal Server Error"), SYSTEM, "internal-error:message"),
    ("nothing known", RuntimeError("the moon is in the wrong phase"), UNKNOWN, "default"),
    ("bare ValueError", ValueError("bad"), UNKNOWN, "default"),
]


@pytest.mark.parametrize(
    ("exc", "error_class", "rule"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_default_table(exc: BaseException, error_class: ErrorClass, rule: str) -> None:
    result = verdict(exc)
    assert (result.error_class, result.rule) == (error_class, rule)


@pytest.mark.parametrize(
    ("error_class", "retry"), [(RECOVERABLE, True), (USER, False), (SYSTEM, True), (UNKNOWN, True)]
)
def test_retry_defaults_by_class(error_class: ErrorClass, retry: bool) -> None:
    rule = Rule("everything", error_class)
    assert classify(failure(""), [rule]).retry is retry


def test_unmatched_error_is_unknown_under_rule_default() -> None:
    result = classify(ErrorInfo(("builtins.ValueError",), "huh", None, 3.0))
    assert result == Classification(UNKNOWN, "default", retry=True, retry_after=None)


# -- reading the HTTP status ---------------------------------------------------------------


def test_httpx_status_and_message_are_read() -> None:
    info = ErrorInfo.from_exception(httpx_error(503))
    assert info.http_status == 503
    assert info.type_names[0] == "httpx.HTTPStatusError"
    assert "503 Service Unavailable" in info.message


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (RequestsHTTPError("boom", FakeResponse(404)), 404),
        (AiohttpResponseError(429), 429),
        (type("ApiError", (Exception,), {"status_code": 502})(), 502),
        (type("ApiError", (Exception,), {"status": 500})(), 500),
    ],
    ids=["requests", "aiohttp", "status_code", "status"],
)
def test_status_is_read_where_libraries_put_it(exc: BaseException, status: int) -> None:
    assert ErrorInfo.from_exception(exc).http_status == status


@pytest.mark.parametrize(
    "value", [True, "503", 99, 600, None, 503.0], ids=["bool", "str", "99", "600", "none", "float"]
)
def test_status_attributes_that_are_not_statuses_are_ignored(value: object) -> None:
    exc = type("ApiError", (Exception,), {"status": value})("plain")
    assert ErrorInfo.from_exception(exc).http_status is None


def test_a_property_that_raises_does_not_break_reading() -> None:
    # httpx.RequestError.request raises RuntimeError when no request was attached.
    class Awkward(Exception):
        @property
        def response(self) -> object:
            raise RuntimeError("no response attached")

    info = ErrorInfo.from_exception(Awkward("HTTP 502 from upstream"))
    assert (info.http_status, info.retry_after) == (502, None)


def test_an_unprintable_exception_still_gets_a_message() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    assert ErrorInfo.from_exception(Unprintable()).message == "<unprintable Unprintable>"


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("upstream answered HTTP 503", 503),
        ("HTTP/1.1 502 Bad Gateway", 502),
        ("HTTP Error 404: Not Found", 404),
        ("request failed with status 503", 503),
        ("Status code: 429", 429),
        ("status_code=422 body={}", 422),
        ("got 503 Service Unavailable from billing", 503),
        ("404 Client Error: Not Found for url: https://x.test/7", 404),
        ("500 Server Error: Internal Server Error for url: https://x.test", 500),
    ],
)
def test_status_from_message(message: str, status: int) -> None:
    assert status_from_message(message) == status


@pytest.mark.parametrize(
    "message",
    [
        "retried 3 times in 500 ms",
        "order 404 shipped to 503 Main Street",
        "took 1503 ms on port 5030",
        "status 999",
        "200 Not Found",
        "HTTP2 stream 429 reset",
        "",
    ],
)
def test_numbers_that_are_not_statuses_are_left_alone(message: str) -> None:
    assert status_from_message(message) is None


def test_message_status_drives_classification() -> None:
    result = verdict(RuntimeError("payments API: HTTP 504 after 30s"))
    assert (result.error_class, result.rule) == (RECOVERABLE, "unavailable:status")


def test_record_from_an_older_python_matches_by_package_and_name() -> None:
    # Before 3.11, asyncio and socket had timeout classes of their own.
    for error_type in ("asyncio.exceptions.TimeoutError", "socket.timeout"):
        assert classify(ErrorInfo.from_record(error_type, "", None)).rule == "timeout:type"


def test_record_keeps_only_its_type_and_reads_status_from_message() -> None:
    info = ErrorInfo.from_record("builtins.TimeoutError", "status code: 503", None)
    assert info == failure("status code: 503", 503, "builtins.TimeoutError")
    assert classify(info).rule == "timeout:type"
    assert ErrorInfo.from_record("", "HTTP 404", 500).type_names == ()
    assert ErrorInfo.from_record("", "HTTP 404", 500).http_status == 500


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_seconds_from_httpx_headers() -> None:
    result = verdict(httpx_error(429, {"Retry-After": "120"}))
    assert (result.error_class, result.retry_after) == (RECOVERABLE, 120.0)


def test_retry_after_http_date_from_requests_headers() -> None:
    when = formatdate(NOW + 90, usegmt=True)
    exc = RequestsHTTPError("slow down", FakeResponse(503, {"retry-after": when}))
    assert verdict(exc).retry_after == 90.0


def test_retry_after_from_aiohttp_headers_and_attribute() -> None:
    assert verdict(AiohttpResponseError(503, {"Retry-After": "5"})).retry_after == 5.0
    exc = AiohttpResponseError(429)
    exc.retry_after = 2.5  # type: ignore[attr-defined]
    assert verdict(exc).retry_after == 2.5


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        (" 1.5 ", 1.5),
        (7, 7.0),
        ("-4", 0.0),
        (formatdate(NOW - 60, usegmt=True), 0.0),
        ("Tue, 14 Nov 2023 22:14:20 -0000", 60.0),  # "-0000": GMT, not local time
        (formatdate(NOW + 3600, usegmt=True), 3600.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_retry_after(value: object, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@given(st.text() | st.floats() | st.integers())
def test_parse_retry_after_is_total(value: object) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or 0.0 <= seconds < float("inf")


def test_retry_after_is_kept_only_for_recoverable_errors() -> None:
    assert verdict(httpx_error(400, {"Retry-After": "60"})).retry_after is None
    assert verdict(httpx_error(503, {"Retry-After": "60"})).retry_after == 60.0


# -- matching through the hierarchy and by name ----------------------------------------------


class PaymentError(Exception):
    pass


class CardDeclined(PaymentError):
    pass


@pytest.mark.parametrize(
    "name", ["PaymentError", f"{__name__}.PaymentError", f"{__name__.split('.')[0]}.PaymentError"]
)
def test_a_subclass_matches_a_rule_naming_its_base(name: str) -> None:
    rules = [Rule("payments", SYSTEM, exception_types=(name,))]
    assert classify(ErrorInfo.from_exception(CardDeclined()), rules).rule == "payments"


def test_a_class_of_the_same_name_in_another_package_does_not_match() -> None:
    foreign = type("TimeoutException", (Exception,), {"__module__": "otherlib.errors"})
    rule = Rule("httpx timeouts", RECOVERABLE, exception_types=("httpx.TimeoutException",))
    assert not rule.matches(ErrorInfo.from_exception(foreign()))
    assert rule.matches(ErrorInfo.from_exception(httpx.PoolTimeout("pool")))


def test_type_names_list_the_hierarchy_most_specific_first() -> None:
    names = ErrorInfo.from_exception(JobTimeout()).type_names
    assert names == (
        "deadletter.errors.JobTimeout",
        "deadletter.errors.DeadletterError",
        "builtins.TimeoutError",
        "builtins.OSError",
        "builtins.Exception",
        "builtins.BaseException",
    )


# -- order: first match wins ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_class", "rule"),
    [
        (failure("Internal error", 503), RECOVERABLE, "unavailable:status"),
        (failure("upstream timed out", 500), SYSTEM, "server-error:status"),
        (failure("request timeout is invalid", 400), USER, "client-error:status"),
        (failure("invalid input: timeout must be > 0"), USER, "invalid-input:message"),
        (failure("", 500, "builtins.TimeoutError"), RECOVERABLE, "timeout:type"),
        (failure("too many requests", 429, "x.ValidationError"), USER, "invalid-input:type"),
    ],
)
def test_stronger_evidence_is_tried_first(
    error: ErrorInfo, error_class: ErrorClass, rule: str
) -> None:
    result = classify(error)
    assert (result.error_class, result.rule) == (error_class, rule)


def test_first_matching_rule_wins() -> None:
    rules = [
        Rule("never", SYSTEM, http_statuses=frozenset({418})),
        Rule("first", USER, message_pattern=re.compile("boom")),
        Rule("second", SYSTEM, message_pattern=re.compile("boom")),
    ]
    assert classify(failure("BOOM"), rules).rule == "first"


def test_custom_rules_come_before_defaults_unless_they_replace_them() -> None:
    custom = Rule("flaky-vendor", RECOVERABLE, http_statuses=frozenset({500}))
    assert build_rules([custom], replace_defaults=False) == (custom, *DEFAULT_RULES)
    assert build_rules([custom], replace_defaults=True) == (custom,)
    assert classify(failure("", 500), build_rules([custom], replace_defaults=False)).rule == (
        "flaky-vendor"
    )
    assert classify(failure("timed out"), [custom]).rule == "default"


# -- one rule's criteria ------------------------------------------------------------------------


def test_a_rule_matches_when_any_criterion_matches() -> None:
    rule = Rule(
        "any",
        USER,
        exception_types=("KeyError",),
        http_statuses=frozenset({409}),
        message_pattern=re.compile("conflict"),
    )
    assert rule.matches(failure("", None, "builtins.KeyError"))
    assert rule.matches(failure("", 409))
    assert rule.matches(failure("Edit CONFLICT"))
    assert not rule.matches(failure("other", 410, "builtins.ValueError"))


def test_a_rule_without_criteria_matches_everything() -> None:
    rule = Rule("catch-all", SYSTEM)
    assert rule.is_catch_all
    assert rule.matches(failure(""))


def test_a_rule_can_override_the_class_retry_default() -> None:
    rules = [Rule("no-retry", RECOVERABLE, http_statuses=frozenset({503}), retry=False)]
    result = classify(ErrorInfo((), "", 503, 10.0), rules)
    assert result == Classification(RECOVERABLE, "no-retry", retry=False, retry_after=10.0)


# -- rules from the config file -----------------------------------------------------------------


def test_rules_from_config_builds_every_field() -> None:
    (rule,) = rules_from_config(
        [
            {
                "name": "vendor-flaky",
                "class": "RECOVERABLE",
                "exception_types": ["VendorError"],
                "http_statuses": [500, 520],
                "message_pattern": r"vendor (down|busy)",
                "retry": False,
            }
        ]
    )
    assert (rule.name, rule.error_class, rule.exception_types) == (
        "vendor-flaky",
        RECOVERABLE,
        ("VendorError",),
    )
    assert (rule.http_statuses, rule.retry) == (frozenset({500, 520}), False)
    assert rule.matches(failure("Vendor BUSY"))


def test_rules_from_config_defaults_optional_keys() -> None:
    (rule,) = rules_from_config([{"name": "rest", "class": "UNKNOWN"}])
    assert rule == Rule("rest", UNKNOWN)


GOOD = {"name": "r", "class": "USER_ERROR"}


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ({**GOOD, "pattern": "x"}, "unknown key 'pattern'"),
        ({"class": "USER_ERROR"}, "missing key 'name'"),
        ({"name": "r"}, "missing key 'class'"),
        ({**GOOD, "name": 3}, "name must be a non-empty string"),
        ({**GOOD, "name": " "}, "name must be a non-empty string"),
        ({**GOOD, "class": "FATAL"}, "class must be one of RECOVERABLE, USER_ERROR"),
        ({**GOOD, "class": "user_error"}, "class must be one of"),
        ({**GOOD, "exception_types": "KeyError"}, "exception_types must be a list"),
        ({**GOOD, "exception_types": [KeyError]}, "exception_types must be a non-empty string"),
        ({**GOOD, "http_statuses": ["503"]}, "http_statuses must hold integers 100-599"),
        ({**GOOD, "http_statuses": [True]}, "http_statuses must hold integers 100-599"),
        ({**GOOD, "http_statuses": [99]}, "http_statuses must hold integers 100-599"),
        ({**GOOD, "http_statuses": 503}, "http_statuses must be a list"),
        ({**GOOD, "message_pattern": "(unclosed"}, "message_pattern '(unclosed' is not a regex"),
        ({**GOOD, "message_pattern": 5}, "message_pattern must be a non-empty string"),
        ({**GOOD, "retry": "yes"}, "retry must be true or false"),
    ],
)
def test_config_mistakes_name_the_rule_and_the_key(
    entry: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        rules_from_config([GOOD, entry])
    assert str(caught.value).startswith("rules[1]")
    assert complaint in str(caught.value)


def test_config_error_names_the_rule_by_name_when_it_has_one() -> None:
    with pytest.raises(ConfigError, match=r"^rules\[0\] \('vendor'\): retry must be"):
        rules_from_config([{"name": "vendor", "class": "RECOVERABLE", "retry": 1}])


def test_config_entry_that_is_not_a_table_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^rules\[0\]: expected a table, got list"):
        rules_from_config([["name", "r"]])  # type: ignore[list-item]


# -- properties: classify is total and deterministic ---------------------------------------------

DEFAULT_NAMES = {rule.name for rule in DEFAULT_RULES} | {"default"}

error_infos = st.builds(
    ErrorInfo,
    type_names=st.lists(
        st.text() | st.sampled_from(["builtins.TimeoutError", "ValidationError"])
    ).map(tuple),
    message=st.text() | st.sampled_from(["timed out", "HTTP 503", "invalid input"]),
    http_status=st.none() | st.integers(),
    retry_after=st.none() | st.floats(allow_nan=False, min_value=0),
)


@given(error_infos)
def test_classify_is_total_and_deterministic(info: ErrorInfo) -> None:
    result = classify(info)
    assert result.error_class in set(ErrorClass)
    assert result.rule in DEFAULT_NAMES
    assert isinstance(result.retry, bool)
    assert classify(info) == result
    expected_wait = info.retry_after if result.error_class is RECOVERABLE else None
    assert result.retry_after == expected_wait


attribute_values = st.none() | st.booleans() | st.integers() | st.floats() | st.text()


@given(
    message=st.text(),
    type_name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True),
    status=attribute_values,
    retry_after=attribute_values,
    headers=st.dictionaries(st.sampled_from(["Retry-After", "retry-after", "X"]), st.text()),
)
def test_reading_any_exception_is_total(
    message: str, type_name: str, status: object, retry_after: object, headers: dict[str, str]
) -> None:
    attributes = {"status": status, "retry_after": retry_after, "headers": headers}
    exc = type(type_name, (Exception,), attributes)(message)
    info = ErrorInfo.from_exception(exc, now=NOW)
    assert info.message == message
    assert info.type_names[0].endswith(f".{type_name}")
    assert info.http_status is None or 100 <= info.http_status <= 599
    assert info.retry_after is None or info.retry_after >= 0
    assert ErrorInfo.from_exception(exc, now=NOW) == info
