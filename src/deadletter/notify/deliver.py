"""Delivery of notifications and alerts through Apprise.

Apprise speaks to Slack, email, PagerDuty, webhooks and the rest through one URL
syntax, but it reports a failed delivery only by returning False and logging why.
Here a failure is an exception, `DeliveryError`, naming each target that failed
(its credentials masked) with the reason Apprise logged, so that the caller can
record it and retry. When a target could not be reached or answered that it cannot
take messages now, it is a `ReceiverUnavailable`: what the dispatcher's breaker
counts as a sign of a receiver's outage.

A message goes to several targets (say Slack and PagerDuty) one after the other, and
one of them failing does not undo the others: the error names in `delivered` those
that took it, and a retry skips them. A target's name is its URL masked, which also
keys what an outbox row was delivered to (store/outbox.py), across restarts and changes
of the configuration; two URLs that mask alike (the same host and path, two passwords)
are told apart by their order among those alike: "json://ops:****@host/hook (2)".
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, quote, urlsplit

import apprise

from deadletter.errors import ConfigError, DeliveryError, ReceiverUnavailable
from deadletter.redact import DEFAULT_REDACTOR

DEFAULT_TIMEOUT = 10.0
USER_PLACEHOLDER = "{user}"

# Apprise's log lines may quote a webhook URL or a token; they end up in error messages.
_SECRETS = DEFAULT_REDACTOR.secrets_only()

# Apprise's plugins catch their transport's errors and only log them, in shared words:
# "A Connection error occurred sending ..." (requests' errors, timeouts included),
# "Connection error while submitting email ...", and "..., error=503." for an HTTP
# status. Those words are what is left to tell a receiver away from a message refused.
_UNREACHABLE = re.compile(r"connection error|\berror=(5\d\d|429)\b", re.IGNORECASE)

_REASONS: ContextVar[list[str] | None] = ContextVar("deadletter_apprise_reasons", default=None)


class _ReasonCollector(logging.Handler):
    """Keeps Apprise's warnings for the call in progress in this context.

    A context variable, not a thread id: Apprise runs a service that has a deadline on
    a worker thread, into which it copies the caller's context.
    """

    def emit(self, record: logging.LogRecord) -> None:
        reasons = _REASONS.get()
        if reasons is not None:
            reasons.append(record.getMessage())


# Once attached, it also keeps Apprise's warnings off stderr in an app that configured
# no logging (Python's last-resort handler): they reach our exception instead.
logging.getLogger("apprise").addHandler(_ReasonCollector(logging.WARNING))


@contextmanager
def _apprise_warnings() -> Iterator[list[str]]:
    reasons: list[str] = []
    token = _REASONS.set(reasons)
    try:
        yield reasons
    finally:
        _REASONS.reset(token)


@dataclass(frozen=True, slots=True)
class _Target:
    name: str  # the URL with its credentials masked, fit for messages and logs
    service: apprise.Apprise


class AppriseChannel:
    """Delivers each message to every target URL it owes; any failure is a `DeliveryError`."""

    def __init__(self, urls: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if isinstance(urls, str):
            raise ConfigError("delivery URLs must be a list of Apprise URLs, not one string")
        if not timeout > 0:
            raise ConfigError(f"delivery timeout must be a positive number of seconds: {timeout}")
        self._targets = tuple(_told_apart(_target(url, timeout) for url in urls))

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets' names: their URLs, credentials masked, each name once."""
        return tuple(target.name for target in self._targets)

    def send(self, *, title: str, body: str, skip: Collection[str] = ()) -> None:
        """Deliver to every target not named in `skip` (those a retry's message already
        reached), then raise `DeliveryError` if any of them failed."""
        if not self._targets:
            raise DeliveryError("no delivery targets configured: nothing was sent")
        owed = [target for target in self._targets if target.name not in skip]
        failed = {target.name: why for target in owed if (why := _send(target, title, body))}
        if not failed:
            return
        still = " still owed" if len(owed) < len(self._targets) else ""
        message = f"delivery failed to {len(failed)} of {len(owed)} target(s){still}: " + (
            "; ".join(failed.values())
        )
        delivered = tuple(target.name for target in owed if target.name not in failed)
        if any(_UNREACHABLE.search(why) for why in failed.values()):
            raise ReceiverUnavailable(message, delivered=delivered)
        raise DeliveryError(message, delivered=delivered)


def _told_apart(targets: Iterable[_Target]) -> Iterator[_Target]:
    """The targets, a name met before numbered by its order among those alike."""
    seen: Counter[str] = Counter()
    for target in targets:
        seen[target.name] += 1
        alike = seen[target.name]
        yield target if alike == 1 else replace(target, name=f"{target.name} ({alike})")


def _target(url: str, timeout: float) -> _Target:
    with _apprise_warnings() as reasons:
        service = apprise.Apprise.instantiate(url)
    if service is None:
        why = "; ".join(reasons) or "Apprise does not recognise it"
        raise ConfigError(f"invalid delivery URL {_SECRETS.redact_text(url)}: {why}")
    # Apprise's own defaults are a few seconds, too short for a slow SMTP relay and
    # too long for a worker's shutdown; timeouts written in the URL itself still win.
    written = parse_qs(urlsplit(url).query)
    if "cto" not in written:
        service.socket_connect_timeout = timeout
    if "rto" not in written:
        service.socket_read_timeout = timeout
    single = apprise.Apprise(service)
    return _Target(single.urls(privacy=True)[0].split("?", 1)[0], single)


def _send(target: _Target, title: str, body: str) -> str | None:
    """None if delivered, else what to say about the failure."""
    with _apprise_warnings() as reasons:
        try:
            delivered = bool(target.service.notify(title=title, body=body))
        except Exception as exc:  # a plugin's bug is one more failed delivery, reported as such
            reasons.append(f"{type(exc).__name__}: {exc}")
            delivered = False
    if delivered:
        return None
    why = "; ".join(reasons) or "Apprise gave no reason"
    return f"{target.name} ({_SECRETS.redact_text(why)})"


def user_target(template: str, user: str) -> str:
    """One user's Apprise URL: `template` with `{user}` replaced by the URL-quoted user.

    e.g. `mailto://smtp.example.com?to={user}` or `json://hooks.local/users/{user}`.
    """
    if USER_PLACEHOLDER not in template:
        raise ConfigError(
            f"user_url_template must contain {USER_PLACEHOLDER}: {_SECRETS.redact_text(template)}"
        )
    if not user:
        # An empty recipient is not "nobody": mailto:// would send to its own sender.
        raise DeliveryError("the failure names no user to notify")
    return template.replace(USER_PLACEHOLDER, quote(user, safe=""))
