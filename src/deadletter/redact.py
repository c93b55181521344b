"""Redaction of credentials and personal data from text and JSON-like values.

Rules are of two kinds. Credentials (tokens, API keys, passwords, card numbers) are
never kept anywhere, not even in forensics. Personal data (emails, phone numbers) may
be kept for the operator's forensics but must not leave the system in alerts and
notifications: `Redactor.secrets_only()` drops the personal rules for the first use.

Rules run in order over the text, each on the output of the ones before. Every rule's
lookbehind rejects each character its own match can end with, and its lookahead each
character a match can start with, so that two candidates touching each other are both
refused or both taken. Together with the order, that keeps `redact_text` idempotent
(tested as a property): a redacted message can be redacted again without change.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from deadletter.errors import ConfigError

REDACTED = "[REDACTED]"

# Substring match on the key with separators and case ignored ("X-Api-Key" matches
# "api_key"); names this short or shorter match whole words only, since "ssn" is
# inside "classname" and "pin" inside "spinner".
SHORT_NAME = 4

SECRET_KEYS = (
    "password", "passwd", "passphrase", "pwd", "secret", "token", "authorization",
    "auth", "api_key", "access_key", "private_key", "credential", "cookie", "session",
    "ssn", "card_number", "credit_card", "cvv", "cvc", "pin",
)  # fmt: skip

# What replaces a match, or None to decline it (a number failing the Luhn check).
Replacer = Callable[[re.Match[str]], str | None]


@dataclass(frozen=True, slots=True)
class RedactionRule:
    """A named pattern and what replaces each match; `personal`: PII, not a credential.

    `hint` finds the lower-case needles of which every match holds one (`needles()`).
    Most text holds none, and looking for them costs far less than running the pattern.
    """

    name: str
    pattern: re.Pattern[str]
    replace: Replacer
    personal: bool = False
    hint: re.Pattern[str] | None = None

    def may_match(self, folded: str) -> bool:
        """Whether `folded` (the text, lower-cased) could hold a match."""
        return self.hint is None or self.hint.search(folded) is not None

    def apply(self, text: str) -> str:
        # Not `pattern.sub`: after a declined candidate the search resumes inside it,
        # so that "4111 4111 1111 1111 1111" still finds the card starting at its
        # second group. Empty matches (a user's `x*`) are declined too.
        parts: list[str] = []
        done = start = 0
        while start <= len(text) and (match := self.pattern.search(text, start)):
            replacement = self.replace(match) if match.group() else None
            if replacement is None:
                start = match.start() + 1
                continue
            parts += (text[done : match.start()], replacement)
            done = start = match.end()
        return "".join(parts) + text[done:] if parts else text


def needles(*words: str) -> re.Pattern[str]:
    """A `RedactionRule.hint` finding any of `words` (lower-case) literally.

    As a trie ("pass(?:phrase|w(?:d|ord))", not "passphrase|passwd|password"): at
    each position the regex engine tries the alternatives one by one, and a trie gives
    it one per distinct first letter instead of one per word. The key names' hint ran
    1.6x faster so on a 439-character traceback (docs/benchmarks.md)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here
    return re.compile(_trie_pattern(trie))


def _trie_pattern(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _trie_pattern(node[char]) for char in sorted(node) if char]
    if not branches:
        return ""
    pattern = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    # A word ends here and a longer one goes on: the longer part is optional.
    return f"(?:{pattern})?" if "" in node else pattern


def _constant(token: str) -> Replacer:
    return lambda match: token


# -- secret key names -------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(name: str) -> tuple[str, ...]:
    """The lower-cased words of a key in any casing: `userSSN_last4` -> user, ssn, last, 4."""
    return tuple(word.lower() for word in _WORDS.findall(name))


@dataclass(frozen=True, slots=True)
class KeyNames:
    """Key names whose values are secret, whatever their type."""

    names: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, names: Iterable[str]) -> KeyNames:
        return cls(tuple(dict.fromkeys(words for name in names if (words := _words(name)))))

    def match(self, key: str) -> bool:
        return _matches(self.names, key)

    def text_pattern(self) -> str:
        """A regex alternation finding these names as keys in free text (case ignored)."""
        return "|".join(
            rf"(?<![a-z0-9]){re.escape(name[0])}(?![a-z0-9])"
            if _is_short(name)
            else r"[_.-]?".join(map(re.escape, name))
            for name in self.names
        )


@functools.lru_cache(maxsize=4096)  # records repeat the same few keys
def _matches(names: tuple[tuple[str, ...], ...], key: str) -> bool:
    words = _words(key)
    collapsed = "".join(words)
    return any(
        (name[0] in words) if _is_short(name) else ("".join(name) in collapsed) for name in names
    )


def _is_short(name: tuple[str, ...]) -> bool:
    return len(name) == 1 and len(name[0]) <= SHORT_NAME


# -- the default rules ------------------------------------------------------------------

# No brackets (percent-encoded in a real URL): "[EMAIL]:[EMAIL]@" is what redaction left.
_URL_CREDENTIALS = re.compile(r"(?<=://)(?P<user>[^\s/@:\[\]]+):(?P<password>[^\s/@\[\]]+)@")

_AUTH_HEADER = re.compile(
    r"\b(?P<scheme>bearer|basic)[ \t]+(?P<token>[A-Za-z0-9._~+/-]+=*)", re.IGNORECASE
)
BEARER_MIN = 8  # "Bearer token expired" names a token without carrying one

_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

_API_KEY = re.compile(
    r"""(?<![A-Za-z0-9])(?:
        (?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}     # Stripe
      | (?:AKIA|ASIA)[0-9A-Z]{16}                      # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{20,}                     # GitHub tokens
      | github_pat_[A-Za-z0-9_]{20,}
      | xox[baprs]-[A-Za-z0-9-]{8,}                    # Slack
    )(?![A-Za-z0-9])""",
    re.VERBOSE,
)

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    # A sentence may end after an address; another address part may not follow it.
    r"(?![A-Za-z0-9_%+-]|\.[A-Za-z0-9._%+@-])"
)

_CARD = re.compile(
    r"""(?<![\w.+-])(?:
        [0-9]{13,19}
      | [0-9]{4}(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4}(?P=sep)[0-9]{4}   # 4-4-4-4
      | [0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}                              # Amex, Diners
    )(?![\w]|[.-][0-9])""",
    re.VERBOSE,
)
# Each alternative above holds one. The hints begin with a single character class: the
# regex engine skips ahead to where that class matches, which it does not for a hint
# that begins with a repeat (`[0-9]{4}`) or a lookbehind. On a traceback: 2.3x faster
# for cards, 1.5x for phones, 3.7x for IBANs.
_CARD_HINT = re.compile(r"[0-9][0-9][0-9][0-9][ -]?[0-9]{4}")
# Issuer prefixes with their lengths: a Luhn check alone passes one number in ten,
# which would take epoch milliseconds and compact timestamps for cards.
_CARD_ISSUER = re.compile(
    r"""4[0-9]{12}(?:[0-9]{3}){0,2}                              # Visa
      | 5[1-5][0-9]{14}                                           # Mastercard
      | 2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)[0-9]{12}
      | 3[47][0-9]{13}                                            # Amex
      | 3(?:0[0-5]|[689][0-9])[0-9]{11,16}                        # Diners
      | 35[0-9]{14,17}                                            # JCB
      | 5[06-9][0-9]{11,17} | 6[0-9]{15,18}                       # Maestro, Discover, UnionPay
    """,
    re.VERBOSE,
)

_PHONE = re.compile(
    r"""(?<![\w.+)-])(?:
        # +1 (415) 555-2671, +44 20 7946 0958: 9 to 15 digits counted by the pattern,
        # so that a number followed by another takes only its own digits.
        \+[0-9](?:(?:[ .-]|\)[ .-]?|[ .-]?\()?[0-9]){8,14}\)?
      | \([0-9]{2,5}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}  # (415) 555-2671
      | [0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}              # 415-555-2671
      | 0[1-9][0-9]{0,3}[ .-]?[0-9]{3,8}(?:[ .-][0-9]{3,4})?  # 020 7946 0958, 0612345678
      | 0[1-9](?:[ .-][0-9]{2}){4}                      # 01 23 45 67 89
    )(?![\w(+]|[.-][0-9])""",
    re.VERBOSE,
)
# Necessary for a match of each alternative above, and far cheaper to look for.
_PHONE_HINT = re.compile(r"[0-9][0-9][0-9]|\+[0-9]|\([0-9][0-9]|0[1-9][ .-][0-9]{2}")
PHONE_DIGITS = range(9, 16)  # E.164 allows 15; fewer than 9 is a count, a date, an id


# An IBAN: country, check digits, then 11 to 30 letters and digits, printed in groups of
# four or not at all. Upper-case, as banks print them.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}"
    r"(?:(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?|[A-Z0-9]{11,30})"
    r"(?![A-Za-z0-9])"
)
# Folded text; the first digit found, then the two letters before it.
_IBAN_HINT = re.compile(r"[0-9](?<=[a-z][a-z][0-9])[0-9] ?[a-z0-9]{4}")
IBAN_LENGTH = range(15, 35)  # Norway's 15 to Saint Lucia's 32, with room to 34 (ISO 13616)


def _iban(match: re.Match[str]) -> str | None:
    """`[IBAN]` for a number whose check digits hold (ISO 7064 mod 97-10): the check
    lets one random string in 97 through, so that order numbers and ids are left alone."""
    compact = match.group().replace(" ", "")
    if len(compact) not in IBAN_LENGTH:
        return None
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return "[IBAN]" if int(digits) % 97 == 1 else None


def _url_credentials(match: re.Match[str]) -> str:
    return f"{match['user']}:{REDACTED}@"


def _auth_header(match: re.Match[str]) -> str | None:
    scheme, token = match["scheme"], match["token"]
    carries = _is_basic_credential(token) if scheme.lower() == "basic" else len(token) >= BEARER_MIN
    return f"{scheme} {REDACTED}" if carries else None


def _is_basic_credential(token: str) -> bool:
    # "Basic authentication failed" must survive; a real one decodes to user:password.
    try:
        return b":" in base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return False


def _card(match: re.Match[str]) -> str | None:
    digits = re.sub(r"[ -]", "", match.group())
    return "[CARD]" if _CARD_ISSUER.fullmatch(digits) and _luhn(digits) else None


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _phone(match: re.Match[str]) -> str | None:
    digits = sum(char.isdigit() for char in match.group())
    return "[PHONE]" if digits in PHONE_DIGITS else None


def _key_value_rule(keys: KeyNames) -> RedactionRule:
    pattern = re.compile(
        rf"""(?P<key>(?:{keys.text_pattern()})[\w.-]{{0,64}}+)
        (?P<sep>["']?[ \t]*+[=:][ \t]*+)
        (?P<scheme>(?:bearer|basic|digest|token)[ \t]++)?
        (?P<value>\[REDACTED\]|"[^"\n]*+"|'[^'\n]*+'|[^\s&"',;)\]}}>]++)""",
        re.IGNORECASE | re.VERBOSE,
    )
    first_words = dict.fromkeys(name[0] for name in keys.names)
    return RedactionRule("key_value", pattern, _key_value, hint=needles(*first_words))


def _key_value(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{match['scheme'] or ''}{quote}{REDACTED}{quote}"


_API_KEY_PREFIXES = (
    "sk_", "pk_", "rk_", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "github_pat_", "xox",
)  # fmt: skip

_BEFORE_KEY_VALUE = (
    RedactionRule("url_credentials", _URL_CREDENTIALS, _url_credentials, hint=needles("://")),
    RedactionRule("auth_header", _AUTH_HEADER, _auth_header, hint=needles("bearer", "basic")),
    RedactionRule("jwt", _JWT, _constant(REDACTED), hint=needles("eyj")),
    RedactionRule("api_key", _API_KEY, _constant(REDACTED), hint=needles(*_API_KEY_PREFIXES)),
)
_AFTER_KEY_VALUE = (
    RedactionRule("email", _EMAIL, _constant("[EMAIL]"), personal=True, hint=needles("@")),
    # Before cards and phones, whose digit groups an IBAN's would otherwise give them.
    RedactionRule("iban", _IBAN, _iban, personal=True, hint=_IBAN_HINT),
    RedactionRule(
        "card", _CARD, _card, hint=_CARD_HINT
    ),  # a credential: a card number is kept nowhere
    RedactionRule("phone", _PHONE, _phone, personal=True, hint=_PHONE_HINT),
)


# -- the redactor -----------------------------------------------------------------------


# Texts this long are mostly tracebacks, and a traceback is redacted again and again:
# on each attempt of a job that fails the same way, and once more in its dead letter's
# forensics. Shorter ones are mostly names and ids, which would only push tracebacks
# out; much longer ones are payload dumps, which would hold megabytes in the memo.
# A lookup costs 1.4-2.1 us; redacting a traceback 13-30 us (bench/redaction.py).
MEMO_LENGTH = 200
MEMO_LONGEST = 10_000
MEMO_SIZE = 512


class _Memo:
    """Redacted texts by a digest of the original, never the original itself (it may
    hold a secret); the least recently used dropped past `size`. Shared by threads."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._texts: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, key: bytes) -> str | None:
        with self._lock:
            text = self._texts.get(key)
            if text is not None:
                self._texts.move_to_end(key)
            return text

    def put(self, key: bytes, text: str) -> None:
        with self._lock:
            self._texts[key] = text
            if len(self._texts) > self._size:
                self._texts.popitem(last=False)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Redactor:
    """Built once (patterns compiled), then shared. Its only state is a memo of the
    long texts it redacted: the same rules give the same result."""

    rules: tuple[RedactionRule, ...]
    keys: KeyNames
    memo: _Memo = field(default_factory=_Memo, init=False, repr=False, compare=False)

    @classmethod
    def from_config(
        cls,
        extra_patterns: Mapping[str, str] = MappingProxyType({}),
        extra_keys: Sequence[str] = (),
    ) -> Redactor:
        """The default rules plus `extra_patterns` (name -> regex, replaced by `[NAME]`)
        and `extra_keys` (more key names whose values are secret)."""
        if isinstance(extra_keys, str):
            raise ConfigError(f"redact_keys must be a list of key names, not {extra_keys!r}")
        keys = KeyNames.of([*SECRET_KEYS, *extra_keys])
        extra = tuple(_extra_rule(name, regex) for name, regex in extra_patterns.items())
        rules = (*_BEFORE_KEY_VALUE, _key_value_rule(keys), *_AFTER_KEY_VALUE, *extra)
        return cls(rules, keys)

    def secrets_only(self) -> Redactor:
        """This redactor without the personal-data rules: for what stays inside."""
        return replace(self, rules=tuple(rule for rule in self.rules if not rule.personal))

    def redact_text(self, text: str) -> str:
        if not MEMO_LENGTH <= len(text) <= MEMO_LONGEST:
            return self._redact(text)
        key = _digest(text)
        redacted = self.memo.get(key)
        if redacted is None:
            redacted = self._redact(text)
            self.memo.put(key, redacted)
        return redacted

    def _redact(self, text: str) -> str:
        folded = text.lower()
        for rule in self.rules:
            if rule.may_match(folded):
                redacted = rule.apply(text)
                if redacted is not text:
                    text, folded = redacted, redacted.lower()
        return text

    def redact_value(self, value: object) -> object:
        """A redacted copy of a JSON-like value; dict keys themselves are kept as they are."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {key: self._redact_item(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.redact_value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(item) for item in value)
        return value

    def _redact_item(self, key: object, item: object) -> object:
        if isinstance(key, str) and self.keys.match(key):
            return REDACTED
        return self.redact_value(item)


@dataclass(frozen=True, slots=True)
class Redactors:
    """`secrets` for what stays inside (forensics); `pii` for what leaves (alerts, mail)."""

    secrets: Redactor
    pii: Redactor

    @classmethod
    def from_config(
        cls,
        extra_patterns: Mapping[str, str] = MappingProxyType({}),
        extra_keys: Sequence[str] = (),
    ) -> Redactors:
        """The rules of `Redactor.from_config`: all of them for `pii`, the secrets' for
        `secrets`."""
        full = Redactor.from_config(extra_patterns, extra_keys)
        return cls(secrets=full.secrets_only(), pii=full)


def _extra_rule(name: str, regex: str) -> RedactionRule:
    label = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    if not label:
        raise ConfigError(f"redact_patterns: pattern name {name!r} has no letters or digits")
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ConfigError(
            f"redact_patterns.{name}: invalid regular expression {regex!r}: {exc}"
        ) from exc
    return RedactionRule(name, pattern, _constant(f"[{label}]"))


DEFAULT_REDACTOR = Redactor.from_config()
# Credentials only: for what stays inside and is read by operators of every scope.
SECRETS_ONLY = DEFAULT_REDACTOR.secrets_only()
