"""The web dashboard: server-rendered pages over the service layer, served beside the API
by `deadletter serve` (see docs/dashboard.md)."""

from deadletter.web.server import create_server

__all__ = ["create_server"]
