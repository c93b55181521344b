"""Delivery through Apprise to a real HTTP receiver on 127.0.0.1: no mocks."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from deadletter.errors import ConfigError, DeliveryError
from deadletter.notify.deliver import AppriseChannel, user_target

if TYPE_CHECKING:  # a conftest is loaded by pytest, not importable as a module
    from tests.integration.conftest import HttpReceiver

TIMEOUT = 1.0
# Generous against a loaded machine, yet far below anything unbounded.
PROMPTLY = 10 * TIMEOUT


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_title_and_body_arrive_at_a_json_webhook(http_receiver: HttpReceiver) -> None:
    channel = AppriseChannel([http_receiver.url("/alerts", scheme="json")], timeout=TIMEOUT)

    channel.send(title="Job failed", body="send_email failed 3 times")

    [request] = http_receiver.requests
    assert request.path.startswith("/alerts")
    assert request.json_body["title"] == "Job failed"
    assert request.json_body["message"] == "send_email failed 3 times"


def test_every_target_receives_the_message(http_receiver: HttpReceiver) -> None:
    urls = [http_receiver.url(path, scheme="json") for path in ("/ops", "/oncall")]

    AppriseChannel(urls, timeout=TIMEOUT).send(title="t", body="b")

    assert sorted(r.path.split("?")[0] for r in http_receiver.requests) == ["/oncall", "/ops"]


def test_a_server_error_raises_naming_the_target_without_its_password(
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.status = 500
    url = http_receiver.url("/alerts", scheme="json").replace("://", "://ops:hunter2@")

    with pytest.raises(DeliveryError) as raised:
        AppriseChannel([url], timeout=TIMEOUT).send(title="t", body="b")

    message = str(raised.value)
    assert f"127.0.0.1:{http_receiver.port}/alerts" in message
    assert "500" in message
    assert "hunter2" not in message
    assert len(http_receiver.requests) == 1


def test_one_failed_target_fails_the_send_after_the_others_were_delivered(
    http_receiver: HttpReceiver, closed_port: int
) -> None:
    good = http_receiver.url("/ops", scheme="json")
    bad = f"json://127.0.0.1:{closed_port}/ops"

    with pytest.raises(
        DeliveryError, match=rf"1 of 2 target\(s\): json://127\.0\.0\.1:{closed_port}"
    ):
        AppriseChannel([bad, good], timeout=TIMEOUT).send(title="t", body="b")

    assert len(http_receiver.requests) == 1


def test_a_retry_skips_the_targets_that_took_the_message(
    http_receiver: HttpReceiver, closed_port: int
) -> None:
    good = http_receiver.url("/ops", scheme="json")
    channel = AppriseChannel([good, f"json://127.0.0.1:{closed_port}/ops"], timeout=TIMEOUT)
    with pytest.raises(DeliveryError) as first:
        channel.send(title="t", body="b")
    assert first.value.delivered == channel.targets[:1]

    with pytest.raises(DeliveryError, match=r"1 of 1 target\(s\) still owed") as retry:
        channel.send(title="t", body="b", skip=first.value.delivered)

    assert retry.value.delivered == ()
    assert len(http_receiver.requests) == 1
    channel.send(title="t", body="b", skip=channel.targets)  # nothing owed: nothing sent
    assert len(http_receiver.requests) == 1


def test_targets_that_mask_alike_are_told_apart(http_receiver: HttpReceiver) -> None:
    """Two passwords on one path: a retry owing the second must not skip it."""
    url = http_receiver.url("/ops", scheme="json")
    names = AppriseChannel(
        [url.replace("://", f"://ops:{pw}@") for pw in ("pw1", "pw2", "pw3")]
    ).targets
    masked = f"json://ops:****@127.0.0.1:{http_receiver.port}/ops"
    assert names == (masked, f"{masked} (2)", f"{masked} (3)")


def test_a_closed_port_raises_promptly(closed_port: int) -> None:
    channel = AppriseChannel([f"json://127.0.0.1:{closed_port}/x"], timeout=TIMEOUT)
    started = time.monotonic()

    with pytest.raises(DeliveryError, match=f"127.0.0.1:{closed_port}"):
        channel.send(title="t", body="b")

    assert time.monotonic() - started < PROMPTLY


def test_a_server_that_never_answers_raises_after_the_timeout(silent_port: int) -> None:
    channel = AppriseChannel([f"json://127.0.0.1:{silent_port}/x"], timeout=TIMEOUT)
    started = time.monotonic()

    with pytest.raises(DeliveryError, match=f"127.0.0.1:{silent_port}"):
        channel.send(title="t", body="b")

    assert TIMEOUT <= time.monotonic() - started < PROMPTLY


def test_no_targets_is_a_delivery_error() -> None:
    with pytest.raises(DeliveryError, match="no delivery targets configured"):
        AppriseChannel([]).send(title="t", body="b")


@pytest.mark.parametrize("url", ["nope://example.com", "json://", "not a url"])
def test_a_url_apprise_cannot_parse_is_a_config_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid delivery URL {url}"):
        AppriseChannel([url])


def test_credentials_in_an_unparseable_url_are_masked() -> None:
    with pytest.raises(ConfigError) as raised:
        AppriseChannel(["nope://ops:hunter2@example.com"])

    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_the_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        AppriseChannel(["json://127.0.0.1/x"], timeout=timeout)


def test_common_services_are_accepted_and_listed_with_credentials_masked() -> None:
    channel = AppriseChannel(
        [
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
            "mailto://ops:hunter2@smtp.example.com?to=oncall@example.com",
            "pagerduty://integrationkey@apikey",
            "form://hooks.example.com/failures",
        ]
    )

    assert len(channel.targets) == 4
    assert not any(
        "hunter2" in target or "TIiajkdnlazkcOXrIdevi7FQ" in target for target in channel.targets
    )


# -- per-user targets -------------------------------------------------------------------


def test_user_target_fills_in_the_user_url_quoted() -> None:
    assert (
        user_target("mailto://ops:pw@smtp.example.com?to={user}", "bob+x@example.com")
        == "mailto://ops:pw@smtp.example.com?to=bob%2Bx%40example.com"
    )
    assert user_target("json://hooks.local/users/{user}", "a/b?c") == (
        "json://hooks.local/users/a%2Fb%3Fc"
    )


def test_user_target_requires_the_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"\{user\}"):
        user_target("json://hooks.local/users", "bob")


def test_user_target_requires_a_user() -> None:
    with pytest.raises(DeliveryError, match="no user"):
        user_target("json://hooks.local/users/{user}", "")


def test_a_user_notification_arrives_at_that_users_path(http_receiver: HttpReceiver) -> None:
    template = http_receiver.url("/users/{user}", scheme="json")

    AppriseChannel([user_target(template, "user-42")], timeout=TIMEOUT).send(
        title="Your export failed", body="The file was too large."
    )

    [request] = http_receiver.requests
    assert request.path.startswith("/users/user-42")
    assert request.json_body["message"] == "The file was too large."
