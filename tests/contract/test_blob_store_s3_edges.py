"""S3 blob stores at their edges, over HTTP against moto's standalone server: a bucket in
a region of its own, a bucket that is gone, and a probe left by a check that died."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from deadletter.errors import BlobStoreUnavailable
from deadletter.forensics.base import TEMP_SUFFIX
from deadletter.forensics.s3 import S3BlobStore
from tests.conftest import MotoServer
from tests.contract.test_blob_store import Server, bucket_name

pytestmark = pytest.mark.usefixtures("aws_credentials")


def test_s3_ensure_creates_the_bucket_in_the_stores_region_once(moto_server: Server) -> None:
    bucket = bucket_name()
    store = S3BlobStore(bucket, endpoint_url=moto_server.endpoint_url, region="eu-west-1")
    store.ensure()
    store.ensure()  # there already: nothing to do
    client = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="eu-west-1")
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    # Another process's ensure() saw no bucket and lost the race to create it: no error.
    S3BlobStore(bucket, endpoint_url=moto_server.endpoint_url, region="eu-west-1")._create_bucket()
    store.put("k", b"v")
    assert store.get("k") == b"v"


def test_s3_read_from_a_bucket_that_is_gone_says_how_to_make_it(moto_server: Server) -> None:
    store = S3BlobStore(bucket_name(), endpoint_url=moto_server.endpoint_url)
    with pytest.raises(BlobStoreUnavailable, match="does not exist; create it with `deadletter"):
        store.get("k")
    assert not store.exists("k")


def test_s3_list_passes_over_a_probe_left_by_a_check_that_died(moto_server: Server) -> None:
    bucket = bucket_name()
    store = S3BlobStore(bucket, "forensics", endpoint_url=moto_server.endpoint_url)
    store.ensure()
    store.put("a/1", b"x")
    client = boto3.client("s3", endpoint_url=moto_server.endpoint_url)
    probe = f"forensics/.check-{uuid.uuid4().hex[:16]}{TEMP_SUFFIX}"
    client.put_object(Bucket=bucket, Key=probe, Body=b"")
    assert list(store.list()) == ["a/1"]


@pytest.fixture
def strict_moto_server(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server that checks credentials, as S3 does: it knows no access key."""
    server = MotoServer(tmp_path / "moto.log", env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    server.start()
    yield server
    server.stop()


def test_s3_with_an_access_key_it_does_not_know_says_to_check_the_key(
    strict_moto_server: MotoServer,
) -> None:
    store = S3BlobStore(bucket_name(), endpoint_url=strict_moto_server.endpoint_url)
    for action in (store.ensure, lambda: store.get("k"), lambda: store.exists("k")):
        with pytest.raises(BlobStoreUnavailable, match="check the access key"):
            action()
