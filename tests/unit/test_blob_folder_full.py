"""A blob folder on a full disk: the blob that does not fit fails alone, says why, and
leaves no half-written temp file behind; the others of its batch are stored."""

from __future__ import annotations

import os
from pathlib import Path

from deadletter.errors import BlobStoreUnavailable
from deadletter.forensics.base import TEMP_SUFFIX
from deadletter.forensics.filesystem import FilesystemBlobStore
from tests.support.tmpfs import tmpfs


def test_a_blob_past_the_free_space_fails_alone_and_leaves_no_temp_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        store = FilesystemBlobStore(disk / "blobs")
        store.ensure()
        failed = store.put_many({"jobs/small": b"{}", "jobs/big": b"x" * 2_000_000})
        assert list(failed) == ["jobs/big"]
        assert isinstance(failed["jobs/big"], BlobStoreUnavailable)
        assert "No space left on device" in str(failed["jobs/big"])
        assert store.get("jobs/small") == b"{}"
        left = [name for _, _, names in os.walk(disk) for name in names]
        assert left == ["small"] and not any(name.endswith(TEMP_SUFFIX) for name in left)
