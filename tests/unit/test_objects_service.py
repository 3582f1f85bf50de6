"""ObjectService: the write order, conflicts, replaces, digests and merge patches."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mos.errors import (
    BadRequest,
    Conflict,
    InvalidMetadata,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from mos.services.objects import Expected, ObjectService, Upload
from mos.stores.base import ObjectRecord
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def upload(identifier: str = "a/b.txt", **meta: str) -> Upload:
    """An Upload with text/plain and the given metadata."""
    return Upload(identifier, "b.txt", "text/plain", list(meta.items()))


@pytest.fixture
def owner(meta: SQLiteMetadataStore) -> str:
    """A real user's id."""
    return meta.create_user("alice", "hash", NOW).id


def blob_names(blobs: FileSystemBlobStore) -> set[str]:
    """The ids of every stored blob."""
    return {b.name for b in blobs.iter_blobs()}


def test_create_then_conflict_keeps_original(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """A second create of the identifier is 409 and its blob is removed."""
    first = objects.create(owner, upload(colour="red"), objects.write_blob([b"one"]))
    with pytest.raises(Conflict) as err:
        objects.create(owner, upload(), objects.write_blob([b"two"]))
    assert err.value.code == "identifier_exists"
    assert blob_names(blobs) == {first.blob_id}
    _user, record, f = objects.open(owner, "a/b.txt")
    with f:
        assert record.blob_id == first.blob_id and f.read() == b"one"


def test_invalid_upload_discards_blob(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """Bad metadata found after streaming leaves no blob behind."""
    with pytest.raises(InvalidMetadata):
        objects.create(owner, upload(**{"x": "y" * 9000}), objects.write_blob([b"1"]))
    assert blob_names(blobs) == set()


def test_put_replaces_and_removes_old_blob(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """A replace swaps the row, keeps created_at, and deletes the old bytes after."""
    first, created = objects.put(owner, upload(a="1"), objects.write_blob([b"old"]))
    assert created
    second, created = objects.put(owner, upload(b="2"), objects.write_blob([b"new"]))
    assert not created
    assert second.created_at == first.created_at and second.revision == first.revision + 1
    assert blob_names(blobs) == {second.blob_id}
    current = objects.get(owner, "a/b.txt")
    assert current.metadata == {"b": "2"} and current.size == 3


def test_put_preconditions(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """If-None-Match: * creates only; If-Match replaces only the named version."""
    first, _ = objects.put(owner, upload(), objects.write_blob([b"v1"]), if_none_match=["*"])
    with pytest.raises(PreconditionFailed):
        objects.put(owner, upload(), objects.write_blob([b"v2"]), if_none_match=["*"])
    with pytest.raises(PreconditionFailed):
        objects.put(owner, upload(), objects.write_blob([b"v2"]), if_match=["0" * 64])
    with pytest.raises(PreconditionFailed):
        objects.put(owner, upload("other"), objects.write_blob([b"v2"]), if_match=["*"])
    second, created = objects.put(
        owner, upload(), objects.write_blob([b"v2"]), if_match=[first.sha256]
    )
    assert not created
    assert blob_names(blobs) == {second.blob_id}


def test_digests_checked(objects: ObjectService, blobs: FileSystemBlobStore) -> None:
    """Content-MD5 and SHA-256 mismatches store nothing; matches pass."""
    body = b"payload"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - Content-MD5
    sha_hex = hashlib.sha256(body).hexdigest()
    sha_b64 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    for exp in (Expected.from_headers(md5, None), Expected.from_headers(None, sha_hex),
                Expected.from_headers(md5, sha_b64)):
        objects.discard(objects.write_blob([body], exp))
    with pytest.raises(BadRequest) as err:
        objects.write_blob([b"other"], Expected.from_headers(md5, None))
    assert err.value.code == "bad_digest"
    with pytest.raises(BadRequest):
        objects.write_blob([body], Expected.from_headers(None, "f" * 64))
    with pytest.raises(BadRequest):
        Expected.from_headers("not base64!", None)
    assert blob_names(blobs) == set()


def test_delete_then_missing(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """Delete removes row and bytes; a second delete is 404."""
    objects.create(owner, upload(), objects.write_blob([b"x"]))
    objects.delete(owner, "a/b.txt")
    assert blob_names(blobs) == set()
    with pytest.raises(NotFound):
        objects.delete(owner, "a/b.txt")


def test_list_pages(objects: ObjectService, owner: str) -> None:
    """Pages chain through `next` until it is None."""
    for i in range(7):
        objects.create(owner, upload(f"k{i}"), objects.write_blob([b"x"]))
    seen: list[str] = []
    after = None
    while True:
        page, after = objects.list(owner, limit=3, after=after)
        seen += page
        if after is None:
            break
    assert seen == [f"k{i}" for i in range(7)]
    with pytest.raises(BadRequest):
        objects.list(owner, limit=0)
    with pytest.raises(BadRequest):
        objects.list(owner, limit=1001)


def test_merge_patch(objects: ObjectService, owner: str) -> None:
    """RFC 7396: strings set, null removes, other types are refused, limits hold."""
    objects.create(owner, upload(a="1", b="2"), objects.write_blob([b"x"]))
    rec = objects.patch_metadata(owner, "a/b.txt", {"a": None, "c": "3"})
    assert rec.metadata == {"b": "2", "c": "3"}
    assert objects.get(owner, "a/b.txt").metadata == {"b": "2", "c": "3"}
    for bad in ({"n": 1}, {"n": ["x"]}, {"n": {"x": "y"}}, {"n": True}):
        with pytest.raises(InvalidMetadata):
            objects.patch_metadata(owner, "a/b.txt", bad)
    with pytest.raises(InvalidMetadata):
        objects.patch_metadata(owner, "a/b.txt", {f"f{i}": "v" for i in range(99)})
    with pytest.raises(NotFound):
        objects.patch_metadata(owner, "missing", {"a": "b"})


def test_open_follows_a_replace(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """Opening after the row moved on finds the new version, never a missing blob."""
    old, _ = objects.put(owner, upload(), objects.write_blob([b"old"]))
    new, _ = objects.put(owner, upload(), objects.write_blob([b"new"]))
    assert not blobs.exists(old.blob_id)
    _user, record, f = objects.open(owner, "a/b.txt")
    with f:
        assert record.blob_id == new.blob_id and f.read() == b"new"


class LostAcknowledgement(SQLiteMetadataStore):
    """A real store whose writes are applied but whose answer is lost, like a dropped reply."""

    def insert_object(self, record: ObjectRecord) -> None:
        """Insert for real, then fail as if the network dropped the acknowledgement."""
        super().insert_object(record)
        raise Unavailable("the reply was lost")

    def swap_object(self, record: ObjectRecord, expected: ObjectRecord) -> bool:
        """Swap for real, then fail the same way."""
        super().swap_object(record, expected)
        raise Unavailable("the reply was lost")


def test_unclear_write_keeps_the_new_blob(tmp_path: Path, blobs: FileSystemBlobStore) -> None:
    """When the store may have applied the write, the bytes stay: the row may point at them."""
    meta = LostAcknowledgement(tmp_path / "lost.db")
    owner = meta.create_user("alice", "hash", NOW).id
    objects = ObjectService(meta, blobs, max_object_size=1024, inline_max=0)
    with pytest.raises(Unavailable):
        objects.create(owner, upload(), objects.write_blob([b"first"]))
    _user, _record, f = objects.open(owner, "a/b.txt")
    with f:
        assert f.read() == b"first"
    with pytest.raises(Unavailable):
        objects.put(owner, upload(), objects.write_blob([b"second"]))
    _user, _record, f = objects.open(owner, "a/b.txt")
    with f:
        assert f.read() == b"second"
    meta.close()


def test_definite_refusal_removes_the_new_blob(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> None:
    """A conflict or failed precondition means the row was surely not written: no orphan."""
    objects.create(owner, upload(), objects.write_blob([b"one"]))
    before = blob_names(blobs)
    with pytest.raises(Conflict):
        objects.create(owner, upload(), objects.write_blob([b"two"]))
    with pytest.raises(PreconditionFailed):
        objects.put(owner, upload(), objects.write_blob([b"three"]), if_none_match=["*"])
    assert blob_names(blobs) == before
