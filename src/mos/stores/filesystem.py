"""Blob store on the local file system: temp file, fsync, rename, fsync of the folders."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from mos.errors import InsufficientStorage, TooLarge, Unavailable
from mos.stores.base import BlobInfo, BlobMissing, Chunk, Leftover
from mos.stores.digests import StreamDigests
from mos.stores.writeback import start_writeback

# Hand the kernel each 8 MiB of a large upload as it arrives (see stores/writeback.py).
WRITEBACK_STEP = 8 * 1024 * 1024
_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_TEMP_NAME = re.compile(r"[0-9a-f]{32}\.part")


class FileSystemBlobStore:
    """Blobs as files named by a random id, in 256 shard folders under `blobs/` (by id prefix).

    One level of 256 keeps folder creation (and the fsyncs it costs) out of all but the first
    few hundred uploads; ext4 and XFS index large folders, so millions of objects are fine.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.temp_dir = root / "tmp"
        for d in (self.root, self.blob_dir, self.temp_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        _fsync_dir(self.root)  # blobs/ and tmp/ themselves must be durable entries
        # Shard folders whose entry in their parent this process has fsynced (or created and
        # fsynced): a folder another writer made may not be durable yet, so the first use
        # here fsyncs its parent once, whoever made it.
        self._durable: set[Path] = set()
        self._durable_lock = threading.Lock()

    def path_of(self, blob_id: str) -> Path:
        """Where a blob lives; only server-generated ids are accepted."""
        if not _BLOB_ID.fullmatch(blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return self.blob_dir / blob_id[:2] / blob_id

    def ping(self) -> None:
        """Create and remove a file in the temp area: the real test of writability."""
        probe = self.temp_dir / f".ping-{uuid.uuid4().hex}"
        try:
            probe.touch(exist_ok=False)
            probe.unlink()
        except OSError as exc:
            raise Unavailable(f"the blob store cannot be written: {exc.strerror}") from exc

    def close(self) -> None:
        """Nothing is held open between calls."""

    def _make_shard_durable(self, shard: Path) -> None:
        """Once per process and shard: fsync blobs/ so the shard folder's own entry is durable.

        Whoever created the folder may not have fsynced blobs/ yet, so the first use here
        does it; 256 shards make this rare after the first uploads.
        """
        with self._durable_lock:
            known = shard in self._durable
        if not known:
            _fsync_dir(self.blob_dir)
            with self._durable_lock:
                self._durable.add(shard)

    def prepare(self) -> None:
        """The folders exist from the start; check that they can be written."""
        self.ping()

    def put(self, chunks: Iterable[Chunk], max_size: int, md5: bool = False) -> BlobInfo:
        """Write chunks to a temp file while hashing, then make it durable under a new id."""
        blob_id = uuid.uuid4().hex
        temp = self.temp_dir / f"{blob_id}.part"
        with StreamDigests(md5) as digests:
            size = flushed = 0
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                with open(fd, "wb", buffering=0) as out:
                    for chunk in chunks:
                        size += len(chunk)
                        if size > max_size:
                            raise TooLarge.over(max_size)
                        digests.update(chunk)
                        view = memoryview(chunk)
                        while view:
                            view = view[out.write(view) or 0 :]
                        if size - flushed >= WRITEBACK_STEP:
                            start_writeback(fd, flushed, size - flushed)
                            flushed = size
                    os.fsync(out.fileno())
                final = self.path_of(blob_id)
                final.parent.mkdir(mode=0o700, exist_ok=True)
                os.rename(temp, final)
                # Every folder the rename changed: the new name must be durable before a row
                # may point at it, and the old one must not come back after a crash.
                _fsync_dir(final.parent)
                _fsync_dir(self.temp_dir)
                self._make_shard_durable(final.parent)
            except BaseException as exc:
                _unlink_quietly(temp)
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise InsufficientStorage() from exc
                raise
            return digests.info(blob_id, size)

    def open(self, blob_id: str) -> BinaryIO:
        """Open a blob for reading."""
        try:
            return open(self.path_of(blob_id), "rb")
        except FileNotFoundError:
            raise BlobMissing(blob_id) from None

    def delete(self, blob_id: str) -> None:
        """Remove a blob; gone already is fine."""
        _unlink_quietly(self.path_of(blob_id))

    def exists(self, blob_id: str) -> bool:
        """Whether the blob file is there."""
        return self.path_of(blob_id).is_file()

    def iter_blobs(self) -> list[Leftover]:
        """Walk the shard folders."""
        paths = (Path(d) / n for d, _dirs, names in os.walk(self.blob_dir) for n in names
                 if _BLOB_ID.fullmatch(n))
        return [found for p in paths if (found := _leftover(p))]

    def iter_temp(self) -> list[Leftover]:
        """List temp files of unfinished writes."""
        paths = (Path(e.path) for e in os.scandir(self.temp_dir) if _TEMP_NAME.fullmatch(e.name))
        return [found for p in paths if (found := _leftover(p))]

    def remove_temp(self, name: str, older_than: float) -> None:
        """Remove one temp file unless it was written to since older_than."""
        if not _TEMP_NAME.fullmatch(name):
            raise ValueError(f"not a temp file name: {name!r}")
        found = _leftover(self.temp_dir / name)
        # A writer still at work refreshes the mtime; if it is unlinked anyway (a writer
        # silent for min_age), its rename fails and the upload errors: nothing corrupt.
        if found is not None and found.mtime < older_than:
            _unlink_quietly(self.temp_dir / name)


def _leftover(path: Path) -> Leftover | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return Leftover(name=path.name, mtime=st.st_mtime, size=st.st_size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
