"""Service fixtures on real temp stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mos.services.objects import ObjectService
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[SQLiteMetadataStore]:
    """A SQLite metadata store in a temp dir."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db")
    yield store
    store.close()


@pytest.fixture
def blobs(tmp_path: Path) -> FileSystemBlobStore:
    """A file-system blob store in a temp dir."""
    return FileSystemBlobStore(tmp_path / "data")


@pytest.fixture
def objects(meta: SQLiteMetadataStore, blobs: FileSystemBlobStore) -> ObjectService:
    """The object service with a 1 MiB limit; every body goes to the blob store.

    These tests are about the blob store's bookkeeping, so nothing is kept inline (the small
    objects that live in their rows have tests of their own, in test_inline_objects.py).
    """
    return ObjectService(meta, blobs, max_object_size=1024 * 1024, inline_max=0)
