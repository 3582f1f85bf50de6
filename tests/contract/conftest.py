"""Store fixtures: every implementation of a protocol runs the same contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mos.stores.base import BlobStore, MetadataStore
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore


@pytest.fixture(params=["sqlite"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """A fresh metadata store of each kind."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db")
    yield store
    store.close()


@pytest.fixture(params=["filesystem"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh blob store of each kind."""
    return FileSystemBlobStore(tmp_path / "blobs-root")
