"""The two store protocols and the records they pass around."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol

# A piece of an object's bytes as uploads hand them over: bytes, the buffer a body was
# received into, or a view of the part of it that is file data (no copy to make it bytes).
Chunk = bytes | bytearray | memoryview
# The blob id of a version whose bytes live in its metadata row. The id, not the bytes column,
# says where the bytes are: a writer that knows nothing of inline bytes (an older release
# during an upgrade) swaps in a blob id of its own and so can never leave stale bytes that
# would be taken for the object.
INLINE_PREFIX = "inline-"


def is_inline_id(blob_id: str) -> bool:
    """Whether a row with this blob id holds its bytes itself (no blob in the blob store)."""
    return blob_id.startswith(INLINE_PREFIX)


def bytes_in_row(blob_id: str, stored: bytes | None) -> bytes | None:
    """The inline bytes a row holds for the object, or None when its bytes are a blob."""
    return stored if stored is not None and is_inline_id(blob_id) else None


class UsernameTaken(Exception):
    """A user with that name (case-insensitively) exists."""


class ObjectExists(Exception):
    """The owner already has an object with that identifier."""


class BlobMissing(Exception):
    """A blob the metadata points at is not in the blob store."""


@dataclass(frozen=True)
class UserRecord:
    """A registered user."""

    id: str
    username: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True)
class ObjectRecord:
    """One object's metadata row; `revision` grows on every change and guards swaps."""

    owner_id: str
    identifier: str
    blob_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)
    revision: int = 1
    # The bytes themselves, for objects small enough to live in their row (no blob file);
    # blob_id is then a fresh INLINE_PREFIX id, so compare-and-swap tells versions apart.
    inline: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BlobInfo:
    """What the blob store learnt while storing a stream (md5 only when it was asked for)."""

    blob_id: str
    size: int
    sha256: str
    md5: str | None = None
    # Set when the bytes were kept in memory for the metadata row instead of the blob store.
    inline: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Leftover:
    """A file in the blob store found by a scan: a blob or a temp file."""

    name: str
    mtime: float
    size: int


class MetadataStore(Protocol):
    """Users and object metadata."""

    def ping(self) -> None:
        """Raise Unavailable unless the store answers."""

    def close(self) -> None:
        """Release connections."""

    def prepare(self) -> None:
        """Create the schema or indexes; raise Unavailable if the store cannot be reached."""

    def create_user(self, username: str, password_hash: str, created_at: datetime) -> UserRecord:
        """Add a user; raise UsernameTaken if the name exists in any case."""

    def get_user(self, user_id: str) -> UserRecord | None:
        """The user with this id, or None."""

    def get_user_by_name(self, username: str) -> UserRecord | None:
        """The user with this name, compared case-insensitively, or None."""

    def insert_object(self, record: ObjectRecord) -> None:
        """Add an object row; raise ObjectExists if (owner, identifier) is taken."""

    def swap_object(self, record: ObjectRecord, expected: ObjectRecord) -> bool:
        """Replace the row if it is still the version `expected` (same blob and revision).

        Comparing the blob id too means a row deleted and created again (revision 1 anew)
        never passes for the row that was read before. `record.revision` must be greater
        than `expected.revision`: stores tell versions apart by it (delete_object on MongoDB).
        """

    def set_metadata(
        self,
        owner_id: str,
        identifier: str,
        metadata: dict[str, str],
        updated_at: datetime,
        expected: ObjectRecord,
    ) -> bool:
        """Replace user metadata if the row is still the version `expected`."""

    def get_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """The owner's object row, or None."""

    def get_user_and_object(
        self, user_id: str, identifier: str
    ) -> tuple[UserRecord | None, ObjectRecord | None]:
        """The user, and their object if both exist: one round trip where the store can."""

    def delete_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """Remove and return the row; None if there was none (exactly one deleter wins)."""

    def list_identifiers(
        self, owner_id: str, prefix: str, after: str | None, limit: int
    ) -> list[str]:
        """Up to `limit` identifiers of the owner in UTF-8 byte order."""

    def usage(self, owner_id: str) -> tuple[int, int]:
        """(number of objects, total bytes) of the owner."""

    def iter_blob_refs(self) -> list[tuple[str, str, str]]:
        """(blob_id, owner_id, identifier) of every object row, for fsck (is_inline_id tells
        the rows that hold their bytes themselves)."""


class BlobStore(Protocol):
    """Object bytes under server-generated names."""

    def ping(self) -> None:
        """Raise Unavailable unless the store can be written."""

    def close(self) -> None:
        """Release what the store holds open."""

    def prepare(self) -> None:
        """Create what the store needs (indexes); raise Unavailable if it cannot be reached."""

    def put(self, chunks: Iterable[Chunk], max_size: int, md5: bool = False) -> BlobInfo:
        """Store a stream durably under a new blob id; TooLarge past max_size."""

    def open(self, blob_id: str) -> BinaryIO:
        """Open a blob for reading; raise BlobMissing if it is not there."""

    def delete(self, blob_id: str) -> None:
        """Remove a blob; a missing one is not an error."""

    def exists(self, blob_id: str) -> bool:
        """Whether the blob is stored."""

    def iter_blobs(self) -> list[Leftover]:
        """Every stored blob, for fsck."""

    def iter_temp(self) -> list[Leftover]:
        """Every temp file of unfinished writes, for fsck."""

    def remove_temp(self, name: str, older_than: float) -> None:
        """Remove one leftover found by iter_temp if it was last written before older_than.

        The check is made again here, atomically where the store allows, because the write
        it belongs to may have gone on since iter_temp looked.
        """
