"""Blobs in S3-compatible object storage (AWS S3, Cloudflare R2, MinIO) via boto3.

A PUT replaces an object whole, so atomicity comes with the protocol. Timeouts and
attempts are small on purpose: the dead-letter handler must learn that the store is
down in seconds, not hang on it, so that it can leave the letter to be retried.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from deadletter.errors import BlobNotFound, BlobStoreError, BlobStoreUnavailable
from deadletter.forensics.base import (
    TEMP_SUFFIX,
    put_concurrently,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Concurrent PUTs of one batch; botocore keeps 10 connections per client by default.
PUT_THREADS = 8
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
# R2, MinIO and other S3 look-alikes reject boto's newer default checksums and may not
# resolve virtual-host bucket names; path style and checksums-when-required work on all.
_COMPATIBLE = Config(
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
# Regions in which CreateBucket must not name a location constraint.
_DEFAULT_REGIONS = {None, "us-east-1", "aws-global", "auto"}


class S3BlobStore:
    """A `BlobStore` in one bucket, every key below an optional prefix.

    `max_attempts` counts the first try. Credentials default to boto3's usual sources."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        connect_timeout: float = 3,
        read_timeout: float = 10,
        max_attempts: int = 2,
    ) -> None:
        self.bucket = bucket
        self.prefix = _folder(prefix)
        self.endpoint_url = endpoint_url
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
        )
        if endpoint_url is not None:
            config = config.merge(_COMPATIBLE)
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def ensure(self) -> None:
        with self._errors("create"):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
            self._create_bucket()

    def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        with self._errors(f"write {key!r} to"):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def put_many(self, blobs: Mapping[str, bytes]) -> dict[str, Exception]:
        return put_concurrently(self.put, blobs, PUT_THREADS)

    def get(self, key: str) -> bytes:
        name = self._name(key)
        with self._errors(f"read {key!r} from"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    raise BlobNotFound(f"no blob {key!r} in {self.url}") from exc
                raise
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        name = self._name(key)
        with self._errors(f"look up {key!r} in"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                # HEAD has no body, so a missing bucket also answers a bare 404.
                if _code(exc) in _NOT_FOUND:
                    return False
                raise
            return True

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        return self._pages(self.prefix + prefix)

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._errors(f"delete {key!r} from"):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def check(self) -> None:
        # A probe written and removed proves credentials, bucket and write access at once.
        probe = f"{self.prefix}.check-{secrets.token_hex(8)}{TEMP_SUFFIX}"
        with self._errors("write to"):
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self._client.delete_object(Bucket=self.bucket, Key=probe)

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _pages(self, start: str) -> Iterator[str]:
        # ListObjectsV2 returns keys in UTF-8 byte order, which is code point order.
        pages = self._client.get_paginator("list_objects_v2")
        with self._errors("list"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    name = item["Key"]
                    if not name.endswith(TEMP_SUFFIX):
                        yield name.removeprefix(self.prefix)

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        try:
            if region in _DEFAULT_REGIONS:
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":  # a concurrent ensure() won
                raise

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate boto's errors into ours, each saying what to do about it."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, doing) from exc
        except (ConnectionError, HTTPClientError, IncompleteReadError) as exc:
            where = self.endpoint_url or "AWS S3"
            raise BlobStoreUnavailable(
                f"cannot {doing} {self.url}: {where} cannot be reached ({exc}); check that it"
                " is up and that the endpoint URL and network route are right"
            ) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise BlobStoreUnavailable(
                f"cannot {doing} {self.url}: {exc}; set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY (or the blob store's access key settings)"
            ) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"cannot {doing} {self.url}: {exc}") from exc

    def _client_error(self, exc: ClientError, doing: str) -> BlobStoreError:
        code, status = _code(exc), _status(exc)
        problem = f"cannot {doing} {self.url}: {code} (HTTP {status})"
        if code == "NoSuchBucket":
            return BlobStoreUnavailable(
                f"{problem}: the bucket {self.bucket!r} does not exist; create it with"
                " `deadletter deploy` (BlobStore.ensure()), or fix the blob store URL"
            )
        if code in _DENIED:
            return BlobStoreUnavailable(
                f"{problem}: check the access key and that it may read, write and list"
                f" the bucket {self.bucket!r}"
            )
        if status >= 500:
            return BlobStoreUnavailable(f"{problem}: the storage service failed; retry later")
        return BlobStoreError(f"{problem}: {exc}")


def _folder(prefix: str) -> str:
    """The store's prefix as a folder: `a/b` and `/a/b/` both become `a/b/`."""
    prefix = prefix.strip("/")
    return validate_key(prefix) + "/" if prefix else ""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
