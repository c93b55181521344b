"""Forensics blob stores: one contract (`base.BlobStore`), one module per backend, by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from deadletter.errors import ConfigError
from deadletter.forensics.base import BlobStore

ACCEPTED = "file:///absolute/path, a plain folder path, or s3://bucket/prefix"


def open_blob_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> BlobStore:
    """The blob store at `url`. S3 settings apply to `s3://` only; credentials default
    to boto3's usual sources (environment, shared files, instance roles)."""
    parts = urlsplit(url)
    if parts.scheme == "" and url:
        from deadletter.forensics.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(Path(url).expanduser())
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path[:1] == "/":
        from deadletter.forensics.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3" and "@" in parts.netloc:
        raise ConfigError(
            f"blob store URL {_shown(url)!r} must not hold credentials: use s3://bucket/prefix"
            " and set the access key in the environment (AWS_ACCESS_KEY_ID, ...) or settings"
        )
    if parts.scheme == "s3" and parts.netloc:
        from deadletter.forensics.s3 import S3BlobStore

        return S3BlobStore(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
    raise ConfigError(f"blob store URL {_shown(url)!r} is not supported: use {ACCEPTED}")


def _shown(url: str) -> str:
    """`url` fit for an error message: whatever precedes '@' may be a password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


__all__ = ["ACCEPTED", "BlobStore", "open_blob_store"]
