"""Browser sessions: a token given once at login becomes an opaque session id in an
HttpOnly cookie; the token stays in this server's memory, never in the page.

Sessions live in the memory of the server that opened them: a restart, or a request
that reaches another server of the deployment, asks for the token again. Each request
re-checks the token (`ops.tokens.verify`), so revoking it ends its sessions at once.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

COOKIE = "deadletter_session"
# A working day: long enough for an incident, short enough that a forgotten tab expires.
TTL_SECONDS = 8 * 3600.0
# At most this many sessions are kept; the oldest go first.
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """`csrf` is sent back with every form: a page of another site cannot know it."""

    id: str
    secret: str | None
    csrf: str
    expires_at: float


class Sessions:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._by_id: dict[str, Session] = {}
        # What a session's next page shows once (a new token's secret), by session id.
        self._once: dict[str, str] = {}
        self._lock = threading.Lock()

    def open(self, secret: str | None, *, now: float) -> Session:
        """A new session for the token `secret` (None: a server without auth)."""
        session = Session(
            secrets.token_urlsafe(32), secret, secrets.token_urlsafe(32), now + self.ttl
        )
        with self._lock:
            if len(self._by_id) >= MAX_SESSIONS:
                oldest = min(self._by_id.values(), key=lambda s: s.expires_at)
                del self._by_id[oldest.id]
                self._once.pop(oldest.id, None)
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None, *, now: float) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None and session.expires_at <= now:
                del self._by_id[session_id]
                return None
        return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._by_id.pop(session_id or "", None)
            self._once.pop(session_id or "", None)

    def put_once(self, session_id: str, text: str) -> None:
        """Keep `text` for the session's next `take_once`, and only that one."""
        with self._lock:
            self._once[session_id] = text

    def take_once(self, session_id: str) -> str | None:
        with self._lock:
            return self._once.pop(session_id, None)
