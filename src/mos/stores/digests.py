"""Digests of a stream being stored: SHA-256 always, MD5 on request, hashed beside the writes."""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType

from mos.stores.base import BlobInfo, Chunk

# Pieces this large are hashed by a helper thread while the caller parses and writes the next
# (hashlib releases the GIL); smaller ones are not worth the hand-over.
PIPELINE_MIN = 256 * 1024
# At most this many pieces wait for the hasher, which bounds the memory it holds.
PIPELINE_DEPTH = 4


class StreamDigests:
    """SHA-256 of a stream, and MD5 only when asked (it is needed only to check Content-MD5,
    and runs at half SHA-256's speed here). Use as a context manager: leaving it stops the
    helper thread whatever happened."""

    def __init__(self, md5: bool) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._queue: queue.Queue[Chunk | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> StreamDigests:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def update(self, chunk: Chunk) -> None:
        """Feed the next piece; large pieces are hashed by the helper thread, in order."""
        if self._queue is None and len(chunk) < PIPELINE_MIN:
            self._hash(chunk)
            return
        if self._queue is None:
            self._queue = queue.Queue(maxsize=PIPELINE_DEPTH)
            self._thread = threading.Thread(target=self._run, name="mos-hash", daemon=True)
            self._thread.start()
        self._queue.put(chunk)  # once the helper runs, every piece goes to it, to keep order

    def _hash(self, chunk: Chunk) -> None:
        self._sha256.update(chunk)
        if self._md5 is not None:
            self._md5.update(chunk)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._hash(chunk)
                except BaseException as exc:  # kept for the caller; the queue keeps draining
                    self._error = exc

    def _stop(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def info(self, blob_id: str, size: int) -> BlobInfo:
        """The BlobInfo of the finished stream (waits for the helper to catch up)."""
        self._stop()
        if self._error is not None:
            raise self._error
        md5 = self._md5.hexdigest() if self._md5 is not None else None
        return BlobInfo(blob_id=blob_id, size=size, sha256=self._sha256.hexdigest(), md5=md5)
