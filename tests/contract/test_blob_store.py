"""The blob store contract, the same tests on every backend, each against a real store:
a folder, and S3 over HTTP (moto's standalone server on loopback, no mocks)."""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from deadletter.errors import BlobNotFound, BlobStoreError, BlobStoreUnavailable, ConfigError
from deadletter.forensics import open_blob_store
from deadletter.forensics.base import TEMP_SUFFIX, BlobStore
from deadletter.forensics.filesystem import FilesystemBlobStore
from deadletter.forensics.s3 import S3BlobStore

BACKENDS = ["filesystem", "s3"]
BAD_KEYS = ["", "/abs", "..", "a/../b", "./a", "a\\b", "a//b", "a/", f"a/b{TEMP_SUFFIX}"]


class Server(Protocol):
    """What the `moto_server` fixtures yield."""

    endpoint_url: str

    def stop(self) -> None: ...

    def start(self) -> None: ...


def bucket_name() -> str:
    return f"dl-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_filesystem_store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs" / "forensics")


@pytest.fixture
def new_s3_store(moto_server: Server, aws_credentials: None) -> BlobStore:
    url = f"s3://{bucket_name()}/forensics"
    return open_blob_store(url, endpoint_url=moto_server.endpoint_url)


@pytest.fixture(params=BACKENDS)
def new_store(request: pytest.FixtureRequest) -> BlobStore:
    """A store of each backend whose folder or bucket does not exist yet."""
    store: BlobStore = request.getfixturevalue(f"new_{request.param}_store")
    return store


@pytest.fixture
def blob_store(new_store: BlobStore) -> BlobStore:
    """A ready store of each backend (parametrized through `new_store`)."""
    new_store.ensure()
    return new_store


# -- the contract, on every backend ------------------------------------------------


def test_put_then_get_returns_the_same_bytes(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 64
    blob_store.put("failures/q/2024-05-01/job.json.gz", data)
    blob_store.put("empty", b"")
    assert blob_store.get("failures/q/2024-05-01/job.json.gz") == data
    assert blob_store.get("empty") == b""


def test_put_overwrites_and_repeating_a_put_is_harmless(blob_store: BlobStore) -> None:
    blob_store.put("k", b"old")
    blob_store.put("k", b"new")
    blob_store.put("k", b"new")
    assert blob_store.get("k") == b"new"
    assert list(blob_store.list()) == ["k"]


def test_exists_follows_put_and_delete(blob_store: BlobStore) -> None:
    assert not blob_store.exists("a/b")
    blob_store.put("a/b", b"x")
    assert blob_store.exists("a/b")
    assert not blob_store.exists("a"), "a prefix of a key is not a key"
    blob_store.delete("a/b")
    assert not blob_store.exists("a/b")


def test_list_by_prefix_pages_through_more_than_one_s3_page(blob_store: BlobStore) -> None:
    many = [f"many/{i:05d}" for i in range(1200)]  # S3 answers 1000 keys a page
    for key in many:
        blob_store.put(key, b"x")
    blob_store.put("many-more/0", b"x")
    blob_store.put("other/0", b"x")
    listed = blob_store.list("many/")
    assert isinstance(listed, Iterator)
    assert list(listed) == many
    assert len(list(blob_store.list())) == 1202


def test_list_is_sorted_by_string_and_matches_partial_prefixes(blob_store: BlobStore) -> None:
    # '-' and '0' sort either side of '/', so a folder's keys fall between its siblings.
    keys = ["a/b", "a-c", "a0", "a/c/d", "b", "A", "é/x", "a/c-", "a/c/e/f"]
    for key in keys:
        blob_store.put(key, key.encode())
    assert list(blob_store.list()) == sorted(keys)
    assert list(blob_store.list("a")) == ["a-c", "a/b", "a/c-", "a/c/d", "a/c/e/f", "a0"]
    assert list(blob_store.list("a/c")) == ["a/c-", "a/c/d", "a/c/e/f"]
    assert list(blob_store.list("a/c/")) == ["a/c/d", "a/c/e/f"]
    assert list(blob_store.list("nothing/")) == []


def test_delete_removes_and_a_missing_key_is_fine(blob_store: BlobStore) -> None:
    blob_store.put("d/1", b"x")
    blob_store.delete("d/1")
    blob_store.delete("d/1")
    blob_store.delete("never/was")
    with pytest.raises(BlobNotFound):
        blob_store.get("d/1")
    assert list(blob_store.list()) == []


def test_get_of_a_missing_key_raises_blob_not_found(blob_store: BlobStore) -> None:
    blob_store.put("present/key", b"x")
    for missing in ("absent", "present", "present/key/below"):
        with pytest.raises(BlobNotFound, match=re.escape(repr(missing))):
            blob_store.get(missing)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_malformed_keys_are_rejected_naming_the_key(blob_store: BlobStore, key: str) -> None:
    named = re.escape(repr(key))
    for call in (
        lambda: blob_store.put(key, b"x"),
        lambda: blob_store.get(key),
        lambda: blob_store.exists(key),
        lambda: blob_store.delete(key),
    ):
        with pytest.raises(ValueError, match=named):
            call()


@pytest.mark.parametrize("prefix", ["/a", "../", "a//", "a\\"])
def test_malformed_prefixes_are_rejected_when_list_is_called(
    blob_store: BlobStore, prefix: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(prefix))):
        blob_store.list(prefix)


def test_put_many_stores_every_blob_and_reports_only_the_bad_keys(
    blob_store: BlobStore,
) -> None:
    blobs = {f"failures/q/2024-05-0{n % 3 + 1}/job-{n}.json.gz": bytes([n]) * 50 for n in range(40)}
    failed = blob_store.put_many({**blobs, "a/../b": b"bad key", "": b"empty key"})
    assert sorted(failed) == ["", "a/../b"]
    assert all(isinstance(exc, ValueError) for exc in failed.values())
    assert {key: blob_store.get(key) for key in blobs} == blobs
    assert sorted(blob_store.list("failures/")) == sorted(blobs)
    assert blob_store.put_many({}) == {}


def test_put_many_on_an_unavailable_store_fails_every_key_without_raising(
    new_store: BlobStore,
) -> None:
    failed = new_store.put_many({"a": b"1", "b/c": b"2"})
    assert sorted(failed) == ["a", "b/c"]
    assert all(isinstance(exc, BlobStoreUnavailable) for exc in failed.values())


def test_ensure_is_idempotent_and_keeps_blobs(blob_store: BlobStore) -> None:
    blob_store.put("kept", b"x")
    blob_store.ensure()
    blob_store.ensure()
    assert blob_store.get("kept") == b"x"


def test_check_passes_and_leaves_nothing_behind(blob_store: BlobStore) -> None:
    blob_store.check()
    assert list(blob_store.list()) == []


def test_before_ensure_the_store_is_unavailable_and_says_what_to_do(
    new_store: BlobStore,
) -> None:
    with pytest.raises(BlobStoreUnavailable, match="deadletter deploy"):
        new_store.check()
    with pytest.raises(BlobStoreUnavailable, match="deadletter deploy"):
        new_store.put("k", b"x")


def test_a_reader_sees_the_old_blob_or_the_new_one_never_a_part(blob_store: BlobStore) -> None:
    versions = [b"a" * 1_000_000, b"b" * 1_000_000]
    blob_store.put("big", versions[0])
    done = threading.Event()

    def write() -> None:
        for i in range(20):
            blob_store.put("big", versions[i % 2])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while not done.is_set():
        assert blob_store.get("big") in versions
        reads += 1
    writer.join()
    assert reads > 0


def test_url_names_the_backend(blob_store: BlobStore) -> None:
    assert blob_store.url.startswith(("file:///", "s3://"))


# -- filesystem only ---------------------------------------------------------------


@pytest.fixture(params=[0o000, 0o277], ids=["umask-000", "umask-277"])
def umask(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    # Depends on tmp_path so that pytest creates it before the umask changes.
    previous = os.umask(request.param)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_folders_are_0700_and_files_0600_whatever_the_umask(
    new_filesystem_store: FilesystemBlobStore,
) -> None:
    store = new_filesystem_store
    store.ensure()
    store.put("q/day/job", b"x")
    store.put("q/day/job", b"y")
    root = store.root
    for folder in (root.parent, root, root / "q", root / "q" / "day"):
        assert mode(folder) == 0o700, folder
    assert mode(root / "q" / "day" / "job") == 0o600


def test_a_crashed_writers_temp_file_is_never_listed(
    new_filesystem_store: FilesystemBlobStore,
) -> None:
    store = new_filesystem_store
    store.ensure()
    store.put("q/job", b"x")
    (store.root / "q" / f".abc123{TEMP_SUFFIX}").write_bytes(b"half")
    assert list(store.list()) == ["q/job"]


def test_a_key_cannot_also_be_a_folder_on_the_filesystem(
    new_filesystem_store: FilesystemBlobStore,
) -> None:
    store = new_filesystem_store
    store.ensure()
    store.put("a/b", b"x")
    with pytest.raises(BlobStoreError, match="'a'") as raised:
        store.put("a", b"x")
    assert not isinstance(raised.value, BlobStoreUnavailable)
    failed = store.put_many({"a": b"x", "c": b"y"})
    assert list(failed) == ["a"] and store.get("c") == b"y"
    assert list(store.list()) == ["a/b", "c"]  # no temp file left behind


# -- S3 only -----------------------------------------------------------------------


def test_s3_prefixes_in_one_bucket_do_not_see_each_other(
    moto_server: Server, aws_credentials: None
) -> None:
    endpoint = moto_server.endpoint_url
    bucket = bucket_name()
    one, two = (S3BlobStore(bucket, name, endpoint_url=endpoint) for name in ("one", "two/"))
    one.ensure()
    one.put("k", b"1")
    two.put("k", b"2")
    assert (one.get("k"), two.get("k")) == (b"1", b"2")
    assert list(one.list()) == ["k"]
    assert (one.url, two.url) == (f"s3://{bucket}/one/", f"s3://{bucket}/two/")


@pytest.mark.usefixtures("aws_credentials")
def test_s3_url_never_holds_credentials() -> None:
    store = open_blob_store(
        "s3://bucket/p", access_key_id="AKIDSECRETID", secret_access_key="very-secret-key"
    )
    assert store.url == "s3://bucket/p/"


def test_s3_outage_fails_puts_promptly_and_recovers_on_restart(
    own_moto_server: Server, aws_credentials: None
) -> None:
    server = own_moto_server
    store = S3BlobStore(bucket_name(), endpoint_url=server.endpoint_url)
    store.ensure()
    store.put("before", b"x")

    server.stop()
    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable, match="cannot be reached"):
        store.put("during", b"x")
    # Bounded by connect_timeout (3 s) x max_attempts (2) plus one retry backoff.
    assert time.monotonic() - started < 8
    with pytest.raises(BlobStoreUnavailable):
        store.get("before")  # unreachable is not missing: never BlobNotFound
    with pytest.raises(BlobStoreUnavailable):
        list(store.list())
    with pytest.raises(BlobStoreUnavailable, match="cannot be reached"):
        store.check()

    server.start()
    with pytest.raises(BlobStoreUnavailable, match="deadletter deploy"):
        store.check()  # moto came back empty: the bucket is gone
    store.ensure()
    store.put("after", b"y")
    assert store.get("after") == b"y"


@pytest.mark.usefixtures("aws_credentials")
def test_s3_hung_server_fails_within_the_configured_timeouts() -> None:
    # A listener that never accepts: the kernel completes the handshake, nobody answers,
    # as with a frozen server. Only read_timeout and max_attempts can end the wait.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
        store = S3BlobStore("bucket", endpoint_url=endpoint, read_timeout=0.5, max_attempts=2)
        started = time.monotonic()
        with pytest.raises(BlobStoreUnavailable, match="cannot be reached"):
            store.put("k", b"x")
        # Each attempt: botocore's fixed 1 s wait for "100 Continue", then read_timeout.
        assert 0.5 <= time.monotonic() - started < 2 * (1 + 0.5) + 1


# -- choosing a backend by URL -----------------------------------------------------


def test_open_blob_store_accepts_file_urls_and_plain_paths(tmp_path: Path) -> None:
    for url in (f"file://{tmp_path}/blobs", str(tmp_path / "blobs")):
        store = open_blob_store(url)
        assert isinstance(store, FilesystemBlobStore)
        assert store.root == tmp_path / "blobs"


@pytest.mark.usefixtures("aws_credentials")
def test_open_blob_store_reads_bucket_and_prefix_from_s3_urls() -> None:
    store = open_blob_store("s3://forensics-bucket/dl/blobs")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("forensics-bucket", "dl/blobs/")


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "file://host/x", "file:relative", "s3://", "s3:///prefix", ""]
)
def test_open_blob_store_rejects_other_urls_naming_them(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(url))) as raised:
        open_blob_store(url)
    assert "s3://bucket/prefix" in str(raised.value)


def test_open_blob_store_refuses_credentials_in_the_url_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as raised:
        open_blob_store("s3://AKID:very-secret@bucket/prefix")
    assert "very-secret" not in str(raised.value)
