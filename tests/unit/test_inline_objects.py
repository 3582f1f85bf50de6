"""Small objects in their rows: where the bytes go, replaces across the threshold, fsck."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from mos.errors import BadRequest, Conflict, TooLarge
from mos.services.fsck import fsck
from mos.services.objects import Expected, ObjectService, Upload
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)
LIMIT = 1000  # inline_max of these tests


@pytest.fixture
def service(meta: SQLiteMetadataStore, blobs: FileSystemBlobStore) -> ObjectService:
    """Bodies of up to LIMIT bytes inline, 1 MiB at most per object."""
    return ObjectService(meta, blobs, max_object_size=1024 * 1024, inline_max=LIMIT)


@pytest.fixture
def owner(meta: SQLiteMetadataStore) -> str:
    """A real user's id."""
    return meta.create_user("alice", "hash", NOW).id


def blob_count(blobs: FileSystemBlobStore) -> int:
    """Blob files on disk."""
    return len(blobs.iter_blobs())


def read(service: ObjectService, owner: str, identifier: str) -> bytes:
    """The object's bytes, as a download gets them."""
    _user, _record, f = service.open(owner, identifier)
    with f:
        return f.read()


@pytest.mark.parametrize(
    ("chunks", "inline"),
    [
        ([], True),
        ([b"x"], True),
        ([b"a" * LIMIT], True),
        ([b"a" * 600, b"b" * 400], True),
        ([b"a" * (LIMIT + 1)], False),
        ([b"a" * 600, b"b" * 401], False),
        ([b"a" * 600, b"b" * 600, b"c" * 5000], False),
    ],
    ids=["empty", "one-byte", "at-limit", "at-limit-in-two", "one-over", "one-over-in-two",
         "over-in-three"],
)
def test_the_threshold_decides_where_bytes_live(
    service: ObjectService, blobs: FileSystemBlobStore, owner: str,
    chunks: list[bytes], inline: bool,
) -> None:
    """Up to inline_max bytes go into the row; one more and every byte goes to a blob file."""
    data = b"".join(chunks)
    record = service.create(owner, Upload("k", "k", "text/plain", []), service.write_blob(chunks))
    assert (record.inline is not None) is inline
    assert blob_count(blobs) == (0 if inline else 1)
    assert record.size == len(data) and record.sha256 == hashlib.sha256(data).hexdigest()
    assert read(service, owner, "k") == data


def test_inline_max_zero_sends_even_empty_bodies_to_blobs(
    meta: SQLiteMetadataStore, blobs: FileSystemBlobStore, owner: str
) -> None:
    """MOS_INLINE_MAX=0: nothing is kept in rows."""
    service = ObjectService(meta, blobs, max_object_size=100, inline_max=0)
    record = service.create(owner, Upload("e", "e", "text/plain", []), service.write_blob([]))
    assert record.inline is None and blob_count(blobs) == 1


def test_replace_across_the_threshold_leaves_no_blob_behind(
    service: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """Inline -> file -> inline: each replace drops the old bytes, wherever they were."""
    up = Upload("r", "r", "text/plain", [])
    service.put(owner, up, service.write_blob([b"small"]))
    big = b"B" * (LIMIT * 3)
    record, created = service.put(owner, up, service.write_blob([big]))
    assert not created and record.inline is None and blob_count(blobs) == 1
    assert read(service, owner, "r") == big
    record, _ = service.put(owner, up, service.write_blob([b"small again"]))
    assert record.inline == b"small again" and blob_count(blobs) == 0
    service.delete(owner, "r")
    assert blob_count(blobs) == 0 and service.meta.iter_blob_refs() == []


def test_failed_small_uploads_store_nothing(
    service: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """A conflict or a wrong digest leaves the first version as it was, and no file."""
    up = Upload("c", "c", "text/plain", [])
    service.create(owner, up, service.write_blob([b"first"]))
    with pytest.raises(Conflict):
        service.create(owner, up, service.write_blob([b"second"]))
    with pytest.raises(BadRequest):
        service.write_blob([b"third"], Expected(sha256="0" * 64))
    assert read(service, owner, "c") == b"first" and blob_count(blobs) == 0


def test_small_body_over_a_smaller_object_limit_is_too_large(
    meta: SQLiteMetadataStore, blobs: FileSystemBlobStore
) -> None:
    """The object size limit holds for bodies that would have lived inline."""
    service = ObjectService(meta, blobs, max_object_size=10, inline_max=LIMIT)
    with pytest.raises(TooLarge):
        service.write_blob([b"x" * 11])
    assert service.write_blob([b"x" * 10]).size == 10


def test_fsck_counts_inline_rows_as_present_and_verifies_their_bytes(
    service: ObjectService, meta: SQLiteMetadataStore, blobs: FileSystemBlobStore, owner: str
) -> None:
    """An inline row is never 'missing'; --verify re-hashes its bytes and finds rot."""
    up = Upload("i", "i", "text/plain", [])
    good = service.create(owner, up, service.write_blob([b"intact"]))
    rotten = service.create(owner, Upload("j", "j", "text/plain", []),
                            service.write_blob([b"will rot"]))
    report = fsck(meta, blobs, verify=True, min_age=0)
    assert report.missing_blobs == [] and report.corrupt_blobs == []
    meta._conn().execute("UPDATE objects SET inline_data = ? WHERE blob_id = ?",
                         (b"has rot", rotten.blob_id))
    report = fsck(meta, blobs, verify=True, min_age=0)
    assert report.corrupt_blobs == [(rotten.blob_id, owner, "j")]
    assert good.blob_id not in {c[0] for c in report.corrupt_blobs}


def test_fsck_verify_reports_an_inline_row_whose_bytes_are_gone(
    service: ObjectService, meta: SQLiteMetadataStore, blobs: FileSystemBlobStore, owner: str
) -> None:
    """A row marked as holding its bytes that holds none is corrupt, not 'nothing to judge'."""
    lost = service.create(owner, Upload("k", "k", "text/plain", []), service.write_blob([b"k"]))
    meta._conn().execute("UPDATE objects SET inline_data = NULL WHERE blob_id = ?",
                         (lost.blob_id,))
    report = fsck(meta, blobs, verify=True, min_age=0)
    assert report.corrupt_blobs == [(lost.blob_id, owner, "k")]
