"""What every answer of the server goes through: the `Host` check and security headers.

A pure ASGI middleware, outside routing, so that it covers every path: the API, its
docs, a 404 and a 405 alike (and a dashboard mounted beside them).

- `Host`: only loopback names, and the names in `[serve] allowed_hosts`, are answered.
  A page in the operator's browser that rebinds its own DNS name to 127.0.0.1 (DNS
  rebinding) sends that name as `Host`, and is refused with 421 before any route runs.
- Headers: `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY` on every
  answer; `Cache-Control: no-store` on every answer but the docs, since failures,
  details and exports carry payloads and personal data; a Content-Security-Policy that
  allows the docs page its scripts and nothing else to frame or fetch anything. An app
  mounted beside the API (the dashboard) may set its own policy and caching: they are
  defaults, not overrides.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost"})
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
# FastAPI's docs pages load Swagger UI and ReDoc from jsDelivr and start them with an
# inline script; nothing else may run, and no other site may frame them.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com;"
    " font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com;"
    " connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
ALWAYS = (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"))


def host_name(header: str) -> str:
    """The name in a `Host` header, lower-cased, without its port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback(name: str) -> bool:
    """Whether `name` (an address or `localhost`) is this machine only."""
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Edges:
    """The middleware: refuses unknown `Host` names, adds headers to every answer."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(name.strip().lower() for name in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = host_name(Headers(scope=scope).get("host", ""))
        if not self.allows(name):
            await _misdirected(name, send)
            return
        docs = scope["path"] in DOCS_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(MutableHeaders(scope=message), docs=docs)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def allows(self, name: str) -> bool:
        return is_loopback(name) or "*" in self.allowed or name in self.allowed


def add_headers(headers: MutableHeaders, *, docs: bool) -> None:
    for name, value in ALWAYS:
        headers.setdefault(name, value)
    headers.setdefault("content-security-policy", DOCS_POLICY if docs else DATA_POLICY)
    if not docs:
        headers.setdefault("cache-control", "no-store")


async def _misdirected(name: str, send: Send) -> None:
    detail = (
        f"this server does not answer for host {name!r}: add it to allowed_hosts under"
        " [serve] in deadletter.toml (DEADLETTER_SERVE_ALLOWED_HOSTS)"
    )
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(key.encode(), value.encode()) for key, value in (*ALWAYS,)]
    headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": 421, "headers": headers})
    await send({"type": "http.response.body", "body": body})
