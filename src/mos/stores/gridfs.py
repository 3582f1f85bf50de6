"""Blob store on MongoDB GridFS: chunks streamed in while hashing, ranged reads by seeking."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from gridfs import GridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from mos.errors import TooLarge
from mos.stores.base import BlobInfo, BlobMissing, Leftover
from mos.stores.mongo import Document, translated

BUCKET = "blobs"
# Set on a files document by delete(); the chunks stay until the grace period is over.
DELETED = "metadata.mos_deleted_at"
# Larger than GridFS's 255 KiB default: fewer documents and round trips per object.
CHUNK_SIZE = 1024 * 1024
# Chunks sent per insert: enough to keep the connection busy, little enough to hold.
WRITE_BATCH = 4
_BLOB_ID = re.compile(r"[0-9a-f]{32}")


class GridFSBlobStore:
    """Blobs as GridFS files whose _id is a server-generated id.

    A GridFS reader fetches chunks as it goes, so deleting a blob at once would cut off a
    download in progress (on a file system the open inode survives; here nothing does).
    delete() therefore only marks the blob; its chunks go `delete_grace` seconds later, when a
    later delete or `mos fsck --repair` purges what has expired.
    """

    def __init__(self, db: Database[Document], delete_grace: float = 3600.0) -> None:
        majority = WriteConcern("majority")
        self._db = db.with_options(write_concern=majority)
        self._bucket = GridFSBucket(self._db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_SIZE)
        self._files = self._db[f"{BUCKET}.files"]
        self._chunks = self._db[f"{BUCKET}.chunks"]
        self.delete_grace = delete_grace

    @translated
    def prepare(self) -> None:
        """The GridFS spec's indexes, and one on the deletion mark for cheap purges."""
        self._chunks.create_index(
            [("files_id", ASCENDING), ("n", ASCENDING)], unique=True, name="files_id_1_n_1"
        )
        self._files.create_index(
            [("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_1_uploadDate_1"
        )
        self._files.create_index(DELETED, sparse=True, name="mos_deleted_at")

    @translated
    def ping(self) -> None:
        """A round trip to the server."""
        self._db.command("ping")

    def close(self) -> None:
        """The client belongs to the metadata store, which closes it."""

    @translated
    def put(self, chunks: Iterable[bytes], max_size: int) -> BlobInfo:
        """Stream chunks into GridFS; the files document is written last, once all is there.

        The chunks are written here rather than through pymongo's GridIn, which holds up to
        32 MiB per upload in memory before it writes; this holds at most a few chunks. The
        documents follow the GridFS spec, so GridFSBucket and any driver read them.
        """
        blob_id = uuid.uuid4().hex
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        size = n = 0
        pending = bytearray()
        batch: list[Document] = []
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(f"The object is larger than the limit of {max_size} bytes.")
                sha.update(chunk)
                md5.update(chunk)
                pending += chunk
                while len(pending) >= CHUNK_SIZE:
                    batch.append({"files_id": blob_id, "n": n, "data": bytes(pending[:CHUNK_SIZE])})
                    del pending[:CHUNK_SIZE]
                    n += 1
                    if len(batch) == WRITE_BATCH:
                        self._chunks.insert_many(batch, ordered=True)
                        batch = []
            if pending:
                batch.append({"files_id": blob_id, "n": n, "data": bytes(pending)})
            if batch:
                self._chunks.insert_many(batch, ordered=True)
            self._files.insert_one({
                "_id": blob_id, "length": size, "chunkSize": CHUNK_SIZE,
                "uploadDate": datetime.now(UTC), "filename": blob_id, "metadata": {},
            })
        except BaseException:
            # If MongoDB is gone the chunks cannot be removed now: they stay as a leftover
            # that fsck reports and removes.
            with contextlib.suppress(Exception):
                self._chunks.delete_many({"files_id": blob_id})
            raise
        return BlobInfo(blob_id=blob_id, size=size, sha256=sha.hexdigest(), md5=md5.hexdigest())

    @translated
    def open(self, blob_id: str) -> BinaryIO:
        """A seekable reader of the blob's chunks."""
        _check(blob_id)
        try:
            stream = self._bucket.open_download_stream(blob_id)
        except NoFile:
            raise BlobMissing(blob_id) from None
        if (stream.metadata or {}).get("mos_deleted_at") is not None:
            stream.close()
            raise BlobMissing(blob_id)
        return cast(BinaryIO, stream)

    @translated
    def delete(self, blob_id: str) -> None:
        """Mark the blob deleted (readers in progress keep reading), then purge expired ones."""
        now = time.time()
        self._files.update_one({"_id": _check(blob_id)}, {"$set": {DELETED: now}})
        expired = self._files.find({DELETED: {"$lt": now - self.delete_grace}}, {"_id": 1})
        for doc in expired.limit(100):
            self._purge(doc["_id"])

    def _purge(self, blob_id: Any) -> None:
        # Files document first, then chunks: a crash in between leaves chunks that
        # iter_temp reports and fsck removes, never a files document without its chunks.
        with contextlib.suppress(NoFile):
            self._bucket.delete(blob_id)

    @translated
    def exists(self, blob_id: str) -> bool:
        """Whether the blob is stored and not deleted."""
        query = {"_id": _check(blob_id), DELETED: {"$exists": False}}
        return self._files.find_one(query, {"_id": 1}) is not None

    @translated
    def iter_blobs(self) -> list[Leftover]:
        """Every complete GridFS file that is not deleted."""
        return list(self._iter_blobs())

    def _iter_blobs(self) -> Iterator[Leftover]:
        query = {DELETED: {"$exists": False}}
        for doc in self._files.find(query, {"_id": 1, "uploadDate": 1, "length": 1}):
            if isinstance(doc["_id"], str) and _BLOB_ID.fullmatch(doc["_id"]):
                yield Leftover(doc["_id"], doc["uploadDate"].timestamp(), int(doc["length"]))

    @translated
    def iter_temp(self) -> list[Leftover]:
        """Leftovers: deleted blobs past their grace, and chunks of unfinished uploads."""
        return list(self._iter_temp())

    def _iter_temp(self) -> Iterator[Leftover]:
        expired = {DELETED: {"$lt": time.time() - self.delete_grace}}
        for doc in self._files.find(expired, {"_id": 1, DELETED: 1, "length": 1}):
            if isinstance(doc["_id"], str) and _BLOB_ID.fullmatch(doc["_id"]):
                deleted_at = float(doc["metadata"]["mos_deleted_at"])
                yield Leftover(f"{doc['_id']}.deleted", deleted_at, int(doc["length"]))
        complete = {doc["_id"] for doc in self._files.find({}, {"_id": 1})}
        groups: dict[Any, tuple[float, int]] = {}
        for doc in self._chunks.find({}, {"files_id": 1}):
            files_id = doc["files_id"]
            if files_id in complete:
                continue
            # A chunk's ObjectId carries the time it was written.
            written = doc["_id"].generation_time.timestamp()
            first, count = groups.get(files_id, (written, 0))
            groups[files_id] = (min(first, written), count + 1)
        for files_id, (first, count) in groups.items():
            if isinstance(files_id, str) and _BLOB_ID.fullmatch(files_id):
                yield Leftover(f"{files_id}.part", first, count * CHUNK_SIZE)

    @translated
    def remove_temp(self, name: str) -> None:
        """Purge one expired deleted blob, or the chunks of one unfinished upload."""
        if name.endswith(".deleted"):
            blob_id = _check(name.removesuffix(".deleted"))
            query = {"_id": blob_id, DELETED: {"$lt": time.time() - self.delete_grace}}
            if self._files.find_one(query, {"_id": 1}) is not None:
                self._purge(blob_id)
            return
        blob_id = _check(name.removesuffix(".part"))
        if self._files.find_one({"_id": blob_id}, {"_id": 1}) is None:
            self._chunks.delete_many({"files_id": blob_id})


def _check(blob_id: str) -> str:
    if not _BLOB_ID.fullmatch(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r}")
    return blob_id
