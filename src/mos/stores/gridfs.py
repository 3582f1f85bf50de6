"""Blob store on MongoDB GridFS: chunks streamed in while hashing, ranged reads by seeking."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from mos.errors import TooLarge, Unavailable
from mos.stores.base import BlobInfo, BlobMissing, Chunk, Leftover
from mos.stores.digests import StreamDigests
from mos.stores.mongo import MAJORITY, Document, translated

log = logging.getLogger("mos")

BUCKET = "blobs"
# Set on a files document by delete(); the chunks stay until the grace period is over.
DELETED_FIELD = "mos_deleted_at"
DELETED = f"metadata.{DELETED_FIELD}"
# Larger than GridFS's 255 KiB default: fewer documents and round trips per object.
CHUNK_SIZE = 1024 * 1024
# Chunks sent per insert: enough to keep the connection busy, little enough to hold.
WRITE_BATCH = 4
# How often a worker purges deleted blobs whose grace is over, and how many at a time.
PURGE_INTERVAL = 60.0
PURGE_BATCH = 20
_BLOB_ID = re.compile(r"[0-9a-f]{32}")


class GridFSBlobStore:
    """Blobs as GridFS files (spec-conformant documents) whose _id is a server-generated id.

    Three things differ from a file system and shape this class:
    - A reader fetches chunks as it goes, so deleting a blob at once would cut off a download
      in progress. delete() only marks the blob; a background thread (and `mos fsck --repair`)
      purges marked blobs once `delete_grace` seconds have passed.
    - An unfinished upload is a set of chunks without a files document. An upload larger than
      one batch keeps a marker in `blobs.uploads`, refreshed after every batch; fsck may only
      remove the chunks of an upload whose marker it has claimed (deleted) as stale, and an
      upload whose marker was claimed fails instead of committing a file with missing chunks.
      A smaller upload writes its chunks and files document back to back, so its chunks are
      never older than fsck's --min-age while it runs.
    - pymongo's GridIn holds 32 MiB per upload and its reader 16 MiB per download; this class
      writes and reads a few chunks at a time instead.
    """

    def __init__(self, db: Database[Document], delete_grace: float = 3600.0) -> None:
        self._db = db.with_options(write_concern=MAJORITY)
        self._files: Collection[Document] = self._db[f"{BUCKET}.files"]
        self._chunks: Collection[Document] = self._db[f"{BUCKET}.chunks"]
        self._uploads: Collection[Document] = self._db[f"{BUCKET}.uploads"]
        self.delete_grace = delete_grace
        self._purger: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

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
        """Stop the purger; the client belongs to the metadata store, which closes it."""
        self._stop.set()

    @translated
    def put(self, chunks: Iterable[Chunk], max_size: int, md5: bool = False) -> BlobInfo:
        """Stream chunks into GridFS; the files document is written last, once all is there."""
        blob_id = uuid.uuid4().hex
        with StreamDigests(md5) as digests:
            size = n = 0
            pending = bytearray()
            batch: list[Document] = []
            # The marker exists only for uploads that write before their end: one that fits
            # in a single final batch writes its chunks and its files document back to back.
            marked = False
            try:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise TooLarge.over(max_size)
                    digests.update(chunk)
                    pending += chunk
                    while len(pending) >= CHUNK_SIZE:
                        piece = bytes(pending[:CHUNK_SIZE])
                        batch.append({"files_id": blob_id, "n": n, "data": piece})
                        del pending[:CHUNK_SIZE]
                        n += 1
                        if len(batch) == WRITE_BATCH:
                            if not marked:
                                self._uploads.insert_one({"_id": blob_id, "touched": time.time()})
                                marked = True
                            self._write_batch(blob_id, batch)
                            batch = []
                if pending:
                    batch.append({"files_id": blob_id, "n": n, "data": bytes(pending)})
                if batch and marked:
                    self._write_batch(blob_id, batch)
                elif batch:
                    self._chunks.insert_many(batch, ordered=True)
                # Claim our own marker: if fsck claimed it first, our chunks may be gone.
                if marked and self._uploads.find_one_and_delete({"_id": blob_id}) is None:
                    raise Unavailable("the upload stalled for so long that fsck removed it")
                self._files.insert_one({
                    "_id": blob_id, "length": size, "chunkSize": CHUNK_SIZE,
                    "uploadDate": datetime.now(UTC), "filename": blob_id, "metadata": {},
                })
            except BaseException:
                # If MongoDB is gone this cannot run; the chunks then stay as a leftover that
                # fsck reports and removes once the marker is stale.
                with contextlib.suppress(Exception):
                    self._chunks.delete_many({"files_id": blob_id})
                    if marked:
                        self._uploads.delete_one({"_id": blob_id})
                raise
            return digests.info(blob_id, size)

    def _write_batch(self, blob_id: str, batch: list[Document]) -> None:
        self._chunks.insert_many(batch, ordered=True)
        alive = self._uploads.update_one({"_id": blob_id}, {"$set": {"touched": time.time()}})
        if alive.matched_count == 0:
            raise Unavailable("the upload stalled for so long that fsck removed it")

    @translated
    def open(self, blob_id: str) -> BinaryIO:
        """A seekable reader that holds one chunk at a time."""
        doc = self._files.find_one({"_id": _check(blob_id)})
        if doc is None or (doc.get("metadata") or {}).get(DELETED_FIELD) is not None:
            raise BlobMissing(blob_id)
        return cast(BinaryIO, ChunkReader(self._chunks, doc))

    @translated
    def delete(self, blob_id: str) -> None:
        """Mark the blob deleted; readers in progress keep reading until the grace is over."""
        self._files.update_one({"_id": _check(blob_id)}, {"$set": {DELETED: time.time()}})
        self._start_purger()

    def _start_purger(self) -> None:
        with self._lock:
            if self._purger is None or not self._purger.is_alive():
                self._purger = threading.Thread(
                    target=self._purge_loop, name="mos-gridfs-purge", daemon=True
                )
                self._purger.start()

    def _purge_loop(self) -> None:
        # Started in a worker (after the fork) by the first delete; every node purges what
        # has expired, and purging a blob twice is harmless.
        while not self._stop.wait(min(PURGE_INTERVAL, max(self.delete_grace, 1.0))):
            try:
                self.purge_expired()
            except Exception:
                log.exception("purging deleted GridFS blobs failed; will retry")

    @translated
    def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Remove up to `limit` deleted blobs whose grace is over; how many were removed."""
        cutoff = time.time() - self.delete_grace
        expired = list(self._files.find({DELETED: {"$lt": cutoff}}, {"_id": 1}).limit(limit))
        for doc in expired:
            self._purge(doc["_id"])
        return len(expired)

    def _purge(self, blob_id: Any) -> None:
        # Files document first, then chunks: a crash in between leaves chunks without a file,
        # which fsck reports and removes; never a files document without its chunks.
        self._files.delete_one({"_id": blob_id})
        self._chunks.delete_many({"files_id": blob_id})

    @translated
    def exists(self, blob_id: str) -> bool:
        """Whether the blob is stored and not deleted."""
        query = {"_id": _check(blob_id), DELETED: {"$exists": False}}
        return self._files.find_one(query, {"_id": 1}) is not None

    @translated
    def iter_blobs(self) -> list[Leftover]:
        """Every complete GridFS file that is not deleted."""
        query = {DELETED: {"$exists": False}}
        found = []
        for doc in self._files.find(query, {"_id": 1, "uploadDate": 1, "length": 1}):
            if isinstance(doc["_id"], str) and _BLOB_ID.fullmatch(doc["_id"]):
                found.append(
                    Leftover(doc["_id"], doc["uploadDate"].timestamp(), int(doc["length"]))
                )
        return found

    @translated
    def iter_temp(self) -> list[Leftover]:
        """Leftovers: deleted blobs past their grace, and chunks of unfinished uploads."""
        return list(self._iter_temp())

    def _iter_temp(self) -> Iterator[Leftover]:
        expired = {DELETED: {"$lt": time.time() - self.delete_grace}}
        for doc in self._files.find(expired, {"_id": 1, DELETED: 1, "length": 1}):
            if isinstance(doc["_id"], str) and _BLOB_ID.fullmatch(doc["_id"]):
                deleted_at = float(doc["metadata"][DELETED_FIELD])
                yield Leftover(f"{doc['_id']}.deleted", deleted_at, int(doc["length"]))
        # An upload in progress (or cut off by a crash): its marker says when it last wrote.
        marked: dict[str, float] = {
            doc["_id"]: float(doc["touched"]) for doc in self._uploads.find({})
        }
        complete = {doc["_id"] for doc in self._files.find({}, {"_id": 1})}
        newest: dict[Any, tuple[float, int]] = {}
        for doc in self._chunks.find({}, {"files_id": 1}):
            files_id = doc["files_id"]
            if files_id in complete:
                continue
            # A chunk's ObjectId carries the time it was written.
            written = doc["_id"].generation_time.timestamp()
            last, count = newest.get(files_id, (written, 0))
            newest[files_id] = (max(last, written), count + 1)
        for blob_id, touched in marked.items():
            if _BLOB_ID.fullmatch(str(blob_id)):
                count = newest.pop(blob_id, (touched, 0))[1]
                yield Leftover(f"{blob_id}.part", touched, count * CHUNK_SIZE)
        for files_id, (last, count) in newest.items():
            if isinstance(files_id, str) and _BLOB_ID.fullmatch(files_id):
                yield Leftover(f"{files_id}.part", last, count * CHUNK_SIZE)

    @translated
    def remove_temp(self, name: str, older_than: float) -> None:
        """Remove one leftover found by iter_temp, if it is still older than older_than."""
        if name.endswith(".deleted"):
            blob_id = _check(name.removesuffix(".deleted"))
            cutoff = min(older_than, time.time() - self.delete_grace)
            if self._files.find_one({"_id": blob_id, DELETED: {"$lt": cutoff}}, {"_id": 1}):
                self._purge(blob_id)
            return
        blob_id = _check(name.removesuffix(".part"))
        if self._uploads.find_one({"_id": blob_id}) is not None:
            # Claiming the marker is what stops the upload from committing later.
            claim = {"_id": blob_id, "touched": {"$lt": older_than}}
            if self._uploads.find_one_and_delete(claim) is None:
                return  # it wrote again meanwhile: still alive
        elif self._files.find_one({"_id": blob_id}, {"_id": 1}) is not None:
            return  # it became a complete file meanwhile
        else:
            last = self._chunks.find_one({"files_id": blob_id}, sort=[("_id", -1)])
            if last is not None and last["_id"].generation_time.timestamp() >= older_than:
                return
        self._chunks.delete_many({"files_id": blob_id})


class ChunkReader(io.RawIOBase):
    """Read a GridFS file one chunk at a time; seek anywhere (Range requests)."""

    def __init__(self, chunks: Collection[Document], files_doc: Document) -> None:
        super().__init__()
        self._chunks = chunks
        self._id = files_doc["_id"]
        self._length = int(files_doc["length"])
        self._chunk_size = int(files_doc["chunkSize"])
        self._pos = 0
        self._cached_n = -1
        self._cached = b""

    def readable(self) -> bool:
        """It reads."""
        return True

    def seekable(self) -> bool:
        """It seeks."""
        return True

    def tell(self) -> int:
        """The current offset."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to an offset, as on a file."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes, never more than the rest of the current chunk."""
        if self._pos >= self._length or size == 0:
            return b""
        n, offset = divmod(self._pos, self._chunk_size)
        data = self._chunk(n)
        end = len(data) if size is None or size < 0 else min(len(data), offset + size)
        piece = data[offset:end]
        self._pos += len(piece)
        return piece

    def readinto(self, buffer: Any) -> int:
        """read() into a buffer."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _chunk(self, n: int) -> bytes:
        if n != self._cached_n:
            doc = self._chunks.find_one({"files_id": self._id, "n": n}, {"data": 1})
            if doc is None:
                raise OSError(f"GridFS file {self._id} has no chunk #{n}")
            self._cached, self._cached_n = bytes(doc["data"]), n
        return self._cached


def _check(blob_id: str) -> str:
    if not _BLOB_ID.fullmatch(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r}")
    return blob_id
