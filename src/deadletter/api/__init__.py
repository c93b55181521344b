"""The HTTP API (`deadletter serve`): FastAPI over the operations of `deadletter.ops`."""

from deadletter.api.app import create_api

__all__ = ["create_api"]
