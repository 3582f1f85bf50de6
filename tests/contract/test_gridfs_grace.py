"""GridFS keeps deleted blobs for readers in progress, then purges them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mos.stores.gridfs import BUCKET, GridFSBlobStore
from mos.stores.mongo import MongoMetadataStore


@pytest.fixture
def mongo(mongo_url: str) -> Iterator[MongoMetadataStore]:
    """A MongoDB metadata store whose database the GridFS store shares."""
    store = MongoMetadataStore.from_url(mongo_url)
    yield store
    store.close()


def chunk_count(mongo: MongoMetadataStore, blob_id: str) -> int:
    """How many GridFS chunks the blob still has."""
    return mongo.database[f"{BUCKET}.chunks"].count_documents({"files_id": blob_id})


def test_deleted_blob_is_purged_after_grace(mongo: MongoMetadataStore) -> None:
    """With no grace left, the next delete purges earlier deleted blobs' chunks."""
    blobs = GridFSBlobStore(mongo.database, delete_grace=0.0)
    blobs.prepare()
    first = blobs.put(iter([b"a" * 3_000_000]), 10_000_000)
    assert chunk_count(mongo, first.blob_id) == 3
    blobs.delete(first.blob_id)
    assert not blobs.exists(first.blob_id)
    second = blobs.put(iter([b"b"]), 10)
    blobs.delete(second.blob_id)
    assert chunk_count(mongo, first.blob_id) == 0


def test_fsck_sees_and_purges_expired_deletes(mongo: MongoMetadataStore) -> None:
    """Expired deleted blobs are leftovers; within the grace they are not."""
    kept = GridFSBlobStore(mongo.database, delete_grace=3600.0)
    info = kept.put(iter([b"x" * 10]), 100)
    kept.delete(info.blob_id)
    assert list(kept.iter_temp()) == []
    assert chunk_count(mongo, info.blob_id) == 1
    expired = GridFSBlobStore(mongo.database, delete_grace=0.0)
    leftovers = [t.name for t in expired.iter_temp()]
    assert leftovers == [f"{info.blob_id}.deleted"]
    expired.remove_temp(leftovers[0])
    assert chunk_count(mongo, info.blob_id) == 0
    assert list(expired.iter_temp()) == []


def test_unfinished_upload_chunks_are_leftovers(mongo: MongoMetadataStore) -> None:
    """Chunks without a files document (a crash mid-upload) are found and removed."""
    blobs = GridFSBlobStore(mongo.database)
    chunks = mongo.database[f"{BUCKET}.chunks"]
    chunks.insert_one({"files_id": "c" * 32, "n": 0, "data": b"partial"})
    assert [t.name for t in blobs.iter_temp()] == ["c" * 32 + ".part"]
    blobs.remove_temp("c" * 32 + ".part")
    assert list(blobs.iter_temp()) == []
