"""GridFS specifics: deleted blobs outlive readers for a grace, unfinished uploads are safe."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mos.errors import Unavailable
from mos.stores.gridfs import BUCKET, CHUNK_SIZE, GridFSBlobStore
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


def test_deleted_blob_is_kept_for_its_grace_then_purged(mongo: MongoMetadataStore) -> None:
    """A reader opened before the delete reads to the end; purging comes after the grace."""
    blobs = GridFSBlobStore(mongo.database, delete_grace=3600.0)
    blobs.prepare()
    info = blobs.put(iter([b"a" * (3 * CHUNK_SIZE)]), 10 * CHUNK_SIZE)
    reader = blobs.open(info.blob_id)
    blobs.delete(info.blob_id)
    assert not blobs.exists(info.blob_id)
    assert blobs.purge_expired() == 0
    assert len(reader.read(-1)) == CHUNK_SIZE  # one chunk per read
    assert len(reader.read(4 * CHUNK_SIZE)) == CHUNK_SIZE
    assert chunk_count(mongo, info.blob_id) == 3
    blobs.close()
    expired = GridFSBlobStore(mongo.database, delete_grace=0.0)
    assert expired.purge_expired() == 1
    assert chunk_count(mongo, info.blob_id) == 0


def test_fsck_sees_and_purges_expired_deletes(mongo: MongoMetadataStore) -> None:
    """Expired deleted blobs are leftovers; within the grace they are not."""
    kept = GridFSBlobStore(mongo.database, delete_grace=3600.0)
    info = kept.put(iter([b"x" * 10]), 100)
    kept.delete(info.blob_id)
    kept.close()
    assert kept.iter_temp() == []
    expired = GridFSBlobStore(mongo.database, delete_grace=0.0)
    leftovers = [t.name for t in expired.iter_temp()]
    assert leftovers == [f"{info.blob_id}.deleted"]
    expired.remove_temp(leftovers[0], older_than=time.time() + 1)
    assert chunk_count(mongo, info.blob_id) == 0
    assert expired.iter_temp() == []


def test_chunks_without_file_or_marker_are_leftovers(mongo: MongoMetadataStore) -> None:
    """Chunks of a crashed upload whose marker is gone are found and removed once old."""
    blobs = GridFSBlobStore(mongo.database)
    mongo.database[f"{BUCKET}.chunks"].insert_one({"files_id": "c" * 32, "n": 0, "data": b"x"})
    assert [t.name for t in blobs.iter_temp()] == ["c" * 32 + ".part"]
    blobs.remove_temp("c" * 32 + ".part", older_than=time.time() - 3600)
    assert chunk_count(mongo, "c" * 32) == 1  # too young to go
    blobs.remove_temp("c" * 32 + ".part", older_than=time.time() + 1)
    assert blobs.iter_temp() == []


def test_fsck_cannot_corrupt_an_upload_in_progress(mongo: MongoMetadataStore) -> None:
    """A live upload's marker is fresh, so fsck leaves it; one whose marker fsck claimed
    as stale fails instead of committing a file with chunks missing."""
    blobs = GridFSBlobStore(mongo.database)
    uploads = mongo.database[f"{BUCKET}.uploads"]
    seen: list[str] = []

    def body(claim: bool) -> Iterator[bytes]:
        for i in range(12):
            yield b"y" * CHUNK_SIZE
            if i == 6:
                marker = uploads.find_one({})
                assert marker is not None
                seen.append(marker["_id"])
                name = f"{marker['_id']}.part"
                # A check with the usual min_age leaves the live upload alone...
                blobs.remove_temp(name, older_than=time.time() - 3600)
                if claim:  # ...one that thinks it is stale claims it
                    blobs.remove_temp(name, older_than=time.time() + 1)

    info = blobs.put(body(claim=False), 100 * CHUNK_SIZE)
    with blobs.open(info.blob_id) as f:
        assert sum(len(c) for c in iter(lambda: f.read(CHUNK_SIZE), b"")) == 12 * CHUNK_SIZE
    with pytest.raises(Unavailable):
        blobs.put(body(claim=True), 100 * CHUNK_SIZE)
    assert chunk_count(mongo, seen[1]) == 0
    assert mongo.database[f"{BUCKET}.files"].find_one({"_id": seen[1]}) is None
    assert uploads.count_documents({}) == 0
