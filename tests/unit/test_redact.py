"""PII and secret redaction: what each rule takes, what must survive, and its config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadletter.app import App
from deadletter.config import settings_from_mapping
from deadletter.errors import ConfigError
from deadletter.integrations.core import Recorder
from deadletter.redact import (
    DEFAULT_REDACTOR,
    MEMO_LENGTH,
    MEMO_LONGEST,
    MEMO_SIZE,
    REDACTED,
    KeyNames,
    RedactionRule,
    Redactor,
    needles,
)

redact = DEFAULT_REDACTOR.redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+tag@example.co.uk now", "mail [EMAIL] now"),
        ("contact: a_b-c@sub.example.org.", "contact: [EMAIL]."),
        ("from <ops@example.com>", "from <[EMAIL]>"),
    ],
)
def test_emails(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (415) 555-2671",
        "+14155552671",
        "+44 20 7946 0958",
        "+49-151-1234-5678",
        "+33 1 23 45 67 89",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "020 7946 0958",
        "07700 900123",
        "0612345678",
        "06-12345678",
        "01 23 45 67 89",
    ],
)
def test_phone_numbers(phone: str) -> None:
    assert redact(f"call {phone} today") == "call [PHONE] today"


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0055 5555 5559",
        "2223000048400011",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "4222222222222",
    ],
)
def test_card_numbers(card: str) -> None:
    assert redact(f"charged card {card}, declined") == "charged card [CARD], declined"


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "NO9386011117947",
    ],
)
def test_ibans_whose_check_digits_hold(iban: str) -> None:
    assert redact(f"refund to {iban}, today") == "refund to [IBAN], today"
    assert DEFAULT_REDACTOR.secrets_only().redact_text(iban) == iban  # personal, not a secret


@pytest.mark.parametrize(
    "text",
    [
        "DE89 3704 0044 0532 0130 01",  # one digit off: the check fails
        "order AB12 3456 7890 1234",
        "ticket XY12ABCDEFGHIJKL",
        "build GH42 of release 2024",
        "de89370400440532013000",  # lower case is not how an IBAN is printed
    ],
)
def test_ordinary_codes_are_not_ibans(text: str) -> None:
    assert redact(text) == text


def test_a_card_next_to_a_rejected_number_is_still_found() -> None:
    # The first four groups fail the Luhn check; the card starts at the second group.
    assert redact("4111 4111 1111 1111 1111") == "4111 [CARD]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi_123", "Authorization: Bearer [REDACTED]"),
        ("sent Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig and", "sent Bearer [REDACTED] and"),
        ("header Basic dXNlcjpwYXNzd29yZA==", "header Basic [REDACTED]"),
        ("authorization: bearer abcdefgh12345", "authorization: bearer [REDACTED]"),
    ],
)
def test_authorization_headers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_live_TYooMQauvdEDq54NiTphI7jx",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "gho_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
        "xoxb-123456789012-1234567890123-abcdefghijklmnop",
        "xoxp-1234-5678-abcdef",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NSJ9.SflKxwRJSMeKKF2QT4fwpM",
    ],
)
def test_api_keys_and_jwts(key: str) -> None:
    assert redact(f"using {key} failed") == f"using {REDACTED} failed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /cb?api_key=abc123&state=ok&access_token=zz9",
            "GET /cb?api_key=[REDACTED]&state=ok&access_token=[REDACTED]",
        ),
        ("login password=hunter2 rejected", "login password=[REDACTED] rejected"),
        ("token: abc123", "token: [REDACTED]"),
        ('{"password": "correct horse"}', '{"password": "[REDACTED]"}'),
        ("{'client_secret': 's3'}", "{'client_secret': '[REDACTED]'}"),
        ("Cookie: session=abc123; theme=dark", "Cookie: [REDACTED]; theme=dark"),
        ("X-Api-Key: abc", "X-Api-Key: [REDACTED]"),
        ("user_ssn=123-45-6789", "user_ssn=[REDACTED]"),
        ("Authorization: Token 9944b09199c62bcf", "Authorization: Token [REDACTED]"),
        ("postgresql://app:s3cret@db:5432/jobs", "postgresql://app:[REDACTED]@db:5432/jobs"),
    ],
)
def test_secrets_in_key_value_text(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15",
        "2024-01-15T10:30:00.123456+00:00",
        "2024-01-15 10:30:00",
        "15.01.2024",
        "20240115103000",
        "at 1700000000 (1700000000123 ms)",
        "job_123456789 failed",
        "job-4155552671",
        "HTTP 500, then 503, then 429",
        "retried 3 of 5 times in 120 ms",
        "4111111111111112",  # a 16-digit number failing the Luhn check
        "1234567812345678",
        "order 000123456",
        "id 12345678-1234-1234-1234-123456789012",
        "from 192.168.100.200:8080",
        "version 1.2.3, 10 000 rows",
        "Basic authentication failed",
        "Bearer token expired",
        "className=Widget spinner=3 author=ann",
        "the password is wrong",
        "see https://example.com/docs/errors#42",
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert redact(text) == text


# -- values -----------------------------------------------------------------------------


def test_nested_structures_are_redacted_and_keep_their_shape() -> None:
    value = {
        "user": {"email": "ann@example.com", "phones": ["+44 20 7946 0958"]},
        "attempts": (1, "card 4111111111111111"),
        "count": 3,
        "ok": None,
    }

    assert DEFAULT_REDACTOR.redact_value(value) == {
        "user": {"email": "[EMAIL]", "phones": ["[PHONE]"]},
        "attempts": (1, "card [CARD]"),
        "count": 3,
        "ok": None,
    }


@pytest.mark.parametrize(
    "key",
    [
        "password", "Password", "db_password", "passwd", "client_secret", "token",
        "accessToken", "Authorization", "api_key", "apiKey", "X-Api-Key", "AWS_ACCESS_KEY",
        "private_key", "credentials", "Set-Cookie", "session_id", "ssn", "userSSN",
        "card_number", "cardNumber", "pin",
    ],
)  # fmt: skip
def test_values_under_secret_keys_are_replaced_whatever_their_type(key: str) -> None:
    for secret in ("hunter2", 1234, {"nested": "x"}, ["a"], None):
        assert DEFAULT_REDACTOR.redact_value({key: secret}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["className", "processName", "spinner", "author", "tokenizer"])
def test_short_secret_names_match_whole_words_only(key: str) -> None:
    # "tokenizer" holds "token": long names match inside words, by design.
    expected = REDACTED if key == "tokenizer" else "value"
    assert DEFAULT_REDACTOR.redact_value({key: "value"}) == {key: expected}


def test_secrets_only_keeps_personal_data_and_removes_credentials() -> None:
    secrets = DEFAULT_REDACTOR.secrets_only()
    text = "ann@example.com +14155552671 token=abc 4111111111111111"

    assert secrets.redact_text(text) == "ann@example.com +14155552671 token=[REDACTED] [CARD]"
    assert secrets.redact_value({"password": "x"}) == {"password": REDACTED}


# -- configuration ----------------------------------------------------------------------


def test_extra_patterns_are_replaced_by_their_upper_cased_name() -> None:
    redactor = Redactor.from_config(
        {"employee_id": r"\bEMP-\d{6}\b", "iban": r"\bGB\d{2}[A-Z]{4}\d{14}\b"}
    )

    assert redactor.redact_text("EMP-004211 paid to GB82WEST12345698765432") == (
        "[EMPLOYEE_ID] paid to [IBAN]"
    )
    assert redactor.redact_text("mail ann@example.com") == "mail [EMAIL]"


def test_extra_keys_apply_to_values_and_to_text() -> None:
    redactor = Redactor.from_config(extra_keys=["internal_ref", "dob"])

    assert redactor.redact_value({"internalRef": 5, "dob": "1990-01-01"}) == {
        "internalRef": REDACTED,
        "dob": REDACTED,
    }
    assert redactor.redact_text("internal_ref=abc dob: 1990-01-01") == (
        "internal_ref=[REDACTED] dob: [REDACTED]"
    )
    assert DEFAULT_REDACTOR.redact_text("internal_ref=abc") == "internal_ref=abc"


def test_an_extra_pattern_matching_nothing_inserts_nothing() -> None:
    assert Redactor.from_config({"empty": "x*"}).redact_text("abc") == "abc"


def test_an_invalid_regex_is_a_config_error_naming_the_pattern() -> None:
    with pytest.raises(ConfigError, match=r"redact_patterns\.employee_id.*\(unclosed"):
        Redactor.from_config({"employee_id": "(unclosed"})


def test_a_pattern_name_without_letters_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="pattern name"):
        Redactor.from_config({"--": "x"})


def test_extra_keys_given_as_one_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="list of key names"):
        Redactor.from_config(extra_keys="password")


# -- properties -------------------------------------------------------------------------

# Pieces that make the rules meet each other: matches touching, nested, half-formed.
FRAGMENTS = [
    "ann@example.com", "a@b.co", "4111111111111111", "4111 1111 1111 1111", "415-555-2671",
    "+1", "+44 20 7946 0958", "0612345678", "2024-01-15", "password", "token", "ssn", "=",
    ":", "://", "Bearer ", "Basic ", "dXNlcjpwYXNz", "eyJhbGc", ".eyJ", "sk_live_", "AKIA",
    "[REDACTED]", "[EMAIL]", "[", "]", "(", ")", "'", '"', "@", ".", "-", "+", "_", " ",
    "\n", "0", "1", "9", "x", "com", "é", "٣",
]  # fmt: skip
texts = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=16).map("".join),
    st.text(alphabet="0123456789 +-.()@abcAZ_=:[]'\"/&", max_size=40),
    st.text(),
)


@settings(max_examples=2000)
@given(texts)
def test_redact_text_is_idempotent_and_never_raises(text: str) -> None:
    once = redact(text)

    assert redact(once) == once


@settings(max_examples=150)
@given(
    st.recursive(
        st.none() | st.integers() | texts,
        lambda inner: st.lists(inner) | st.dictionaries(texts, inner),
    )
)
def test_redact_value_is_idempotent(value: object) -> None:
    once = DEFAULT_REDACTOR.redact_value(value)

    assert DEFAULT_REDACTOR.redact_value(once) == once


# -- the hints' fast forms, and the memo of long texts -----------------------------------

# Each hint as it reads plainly; the rules use forms the regex engine searches faster.
PLAIN_HINTS = {
    "card": r"[0-9]{4}[ -]?[0-9]{4}",
    "phone": r"[0-9]{3}|\+[0-9]|\([0-9]{2}|0[1-9][ .-][0-9]{2}",
    "iban": r"[a-z]{2}[0-9]{2} ?[a-z0-9]{4}",
}


@settings(max_examples=1000)
@given(st.text(alphabet="0123456789 -.+()abz", max_size=40))
def test_each_hint_finds_what_its_plain_form_finds(folded: str) -> None:
    for rule in DEFAULT_REDACTOR.rules:
        if rule.name in PLAIN_HINTS:
            assert rule.hint is not None
            plain = re.search(PLAIN_HINTS[rule.name], folded) is not None
            assert (rule.hint.search(folded) is not None) == plain, rule.name


@settings(max_examples=1000)
@given(
    st.lists(st.text(alphabet="ab.*(?_", min_size=1, max_size=5), min_size=1, max_size=8),
    st.text(alphabet="ab.*(?_ ", max_size=40),
)
def test_needles_find_a_text_holding_any_of_their_words(words: list[str], text: str) -> None:
    assert (needles(*words).search(text) is not None) == any(word in text for word in words)


def counting(calls: list[str]) -> Redactor:
    """A redactor of the word `secret` that notes each time its rule replaces one."""

    def replace(match: re.Match[str]) -> str:
        calls.append(match.group())
        return REDACTED

    return Redactor((RedactionRule("word", re.compile("secret"), replace),), KeyNames.of([]))


def long_text(n: int = 0) -> str:
    return f"Traceback {n}: the secret is out\n".ljust(MEMO_LENGTH, ".")


def test_a_long_text_is_redacted_once_however_often_it_is_asked_for() -> None:
    calls: list[str] = []
    redactor = counting(calls)

    results = {redactor.redact_text(long_text()) for _ in range(3)}

    assert results == {long_text().replace("secret", REDACTED)}
    assert calls == ["secret"]


def test_a_short_text_is_redacted_each_time() -> None:
    calls: list[str] = []
    redactor = counting(calls)

    for _ in range(3):
        assert redactor.redact_text("the secret") == f"the {REDACTED}"

    assert calls == ["secret"] * 3


def test_a_text_longer_than_the_memo_takes_is_redacted_each_time() -> None:
    calls: list[str] = []
    redactor = counting(calls)
    payload_dump = long_text().ljust(MEMO_LONGEST + 1, ".")

    for _ in range(3):
        redactor.redact_text(payload_dump)

    assert calls == ["secret"] * 3
    assert len(redactor.memo) == 0


def test_the_memo_keeps_a_text_asked_for_again_over_older_ones() -> None:
    calls: list[str] = []
    redactor = counting(calls)
    for n in range(MEMO_SIZE):
        redactor.redact_text(long_text(n))

    redactor.redact_text(long_text(0))  # now the most recently used
    redactor.redact_text(long_text(MEMO_SIZE))  # pushes out long_text(1)
    assert len(calls) == MEMO_SIZE + 1
    redactor.redact_text(long_text(0))
    assert len(calls) == MEMO_SIZE + 1
    redactor.redact_text(long_text(1))
    assert len(calls) == MEMO_SIZE + 2


def test_the_memo_forgets_the_oldest_text_past_its_size() -> None:
    calls: list[str] = []
    redactor = counting(calls)
    for n in range(MEMO_SIZE + 1):
        redactor.redact_text(long_text(n))

    redactor.redact_text(long_text(MEMO_SIZE))
    assert len(calls) == MEMO_SIZE + 1
    redactor.redact_text(long_text(0))
    assert len(calls) == MEMO_SIZE + 2
    assert len(redactor.memo) == MEMO_SIZE


def test_an_apps_workers_dlq_handler_and_host_recorders_share_its_redactors(tmp_path: Path) -> None:
    app = App(
        settings_from_mapping(
            {
                "database_url": f"sqlite:///{tmp_path}/deadletter.db",
                "blob_url": str(tmp_path / "blobs"),
                "dlq": {"log_file": str(tmp_path / "dlq.log")},
                "queues": {"default": {"max_retries": 0}},
            }
        )
    )

    @app.task(name="fails")
    def fails() -> None:
        raise ValueError("a failure whose traceback the worker redacts")

    fails.enqueue()
    app.worker(dlq=False).run(burst=True)

    assert len(app.redactors.secrets.memo) == 1  # the worker's redactor is the app's
    assert app.dlq.handler.redactors is app.redactors
    assert Recorder(app, "celery").redactor is app.redactors.secrets
    app.close()
