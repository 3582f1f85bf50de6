"""Store fixtures: every implementation of a protocol runs the same contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mos.stores.base import BlobStore, MetadataStore
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.gridfs import GridFSBlobStore
from mos.stores.mongo import MongoMetadataStore
from mos.stores.sqlite import SQLiteMetadataStore


@pytest.fixture(params=["sqlite", "mongo"])
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """A fresh metadata store of each kind, prepared as `mos serve` prepares it."""
    store: MetadataStore
    if request.param == "sqlite":
        store = SQLiteMetadataStore(tmp_path / "metadata.db")
    else:
        store = MongoMetadataStore.from_url(request.getfixturevalue("mongo_url"))
    store.prepare()
    yield store
    store.close()


@pytest.fixture(params=["filesystem", "gridfs"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """A fresh blob store of each kind."""
    if request.param == "filesystem":
        yield FileSystemBlobStore(tmp_path / "blobs-root")
        return
    mongo = MongoMetadataStore.from_url(request.getfixturevalue("mongo_url"))
    yield GridFSBlobStore(mongo.database)
    mongo.close()
