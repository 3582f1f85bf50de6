"""The BlobStore contract, run on every implementation."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator

import pytest

from mos.errors import TooLarge, Unavailable
from mos.stores.base import BlobMissing, BlobStore
from mos.stores.filesystem import FileSystemBlobStore


def test_put_open_delete(blobs: BlobStore) -> None:
    """Bytes come back as they went in, with their digests."""
    data = [b"hello ", b"world", b""]
    info = blobs.put(iter(data), max_size=100, md5=True)
    assert info.size == 11
    assert info.sha256 == hashlib.sha256(b"hello world").hexdigest()
    assert info.md5 == hashlib.md5(b"hello world").hexdigest()  # noqa: S324 - checking Content-MD5
    other = blobs.put(iter(data), max_size=100)
    assert other.md5 is None  # only computed when asked for
    blobs.delete(other.blob_id)
    with blobs.open(info.blob_id) as f:
        assert f.read() == b"hello world"
    assert blobs.exists(info.blob_id)
    assert [b.name for b in blobs.iter_blobs()] == [info.blob_id]
    blobs.delete(info.blob_id)
    blobs.delete(info.blob_id)  # gone already is fine
    assert not blobs.exists(info.blob_id)
    with pytest.raises(BlobMissing):
        blobs.open(info.blob_id)


def test_empty_blob(blobs: BlobStore) -> None:
    """A zero-byte object is a real object."""
    info = blobs.put(iter([]), max_size=10)
    assert info.size == 0
    with blobs.open(info.blob_id) as f:
        assert f.read() == b""


def test_limit_stops_while_streaming(blobs: BlobStore) -> None:
    """The size limit stops reading as soon as it is crossed, and leaves nothing behind."""
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1000

    with pytest.raises(TooLarge):
        blobs.put(endless(), max_size=5000)
    assert pulled == 6
    assert list(blobs.iter_blobs()) == []
    assert list(blobs.iter_temp()) == []


def test_failing_stream_leaves_nothing(blobs: BlobStore) -> None:
    """A body that breaks mid-way leaves no blob and no temp file."""

    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        blobs.put(broken(), max_size=100)
    assert list(blobs.iter_blobs()) == []
    assert list(blobs.iter_temp()) == []


def test_distinct_ids(blobs: BlobStore) -> None:
    """Every put gets its own server-generated id."""
    ids = {blobs.put(iter([b"same"]), 10).blob_id for _ in range(20)}
    assert len(ids) == 20


def test_open_reader_survives_delete(blobs: BlobStore) -> None:
    """A reader that opened a blob keeps reading it after a concurrent delete."""
    info = blobs.put(iter([b"a" * 100_000]), 200_000)
    with blobs.open(info.blob_id) as f:
        blobs.delete(info.blob_id)
        assert f.read() == b"a" * 100_000


def test_ping(blobs: BlobStore) -> None:
    """A writable store answers ping."""
    blobs.ping()


@pytest.mark.parametrize("blobs", ["filesystem"], indirect=True)
def test_ping_fails_when_the_store_is_gone(blobs: BlobStore) -> None:
    """A store whose folders were removed is not ready."""
    assert isinstance(blobs, FileSystemBlobStore)
    shutil.rmtree(blobs.root)
    with pytest.raises(Unavailable):
        blobs.ping()


def test_ranged_reads_by_seeking(blobs: BlobStore) -> None:
    """seek() then read() returns the same bytes as slicing, across chunk boundaries."""
    data = bytes(range(256)) * 12_000  # about 3 MB: several GridFS chunks
    info = blobs.put(iter([data[:1_000_000], data[1_000_000:]]), len(data))
    for start, length in [(0, 10), (1_048_570, 20), (len(data) - 5, 5), (2_500_000, 600_000)]:
        with blobs.open(info.blob_id) as f:
            f.seek(start)
            got = b""
            while len(got) < length:
                piece = f.read(length - len(got))
                if not piece:
                    break
                got += piece
        assert got == data[start:start + length], (start, length)
