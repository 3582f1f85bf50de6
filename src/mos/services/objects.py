"""Objects: limits, the per-owner namespace and the write order of DESIGN.md."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

from mos.errors import (
    BadRequest,
    Conflict,
    InsufficientStorage,
    InvalidMetadata,
    MosError,
    NotFound,
    PreconditionFailed,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from mos.services.clock import utcnow
from mos.services.names import check_identifier, check_metadata
from mos.stores.base import (
    INLINE_PREFIX,
    BlobInfo,
    BlobMissing,
    BlobStore,
    Chunk,
    MetadataStore,
    ObjectExists,
    ObjectRecord,
    UserRecord,
)

log = logging.getLogger("mos")

MAX_LIST_LIMIT = 1000
_SWAP_ATTEMPTS = 20
# Objects up to this size keep their bytes in the metadata row: the row's commit (one fsync
# of SQLite's WAL, or one majority write) makes them durable, where a blob file costs three
# fsyncs more (file, shard folder, temp folder) plus a rename. MinIO inlines objects under
# 128 KiB in its metadata for the same reason; SQLite measures small blobs read faster from
# the database than from files (https://sqlite.org/fasterthanfs.html).
INLINE_MAX = 64 * 1024


def etag_of(record: ObjectRecord) -> str:
    """The strong entity tag: the quoted SHA-256 of the bytes."""
    return f'"{record.sha256}"'


@dataclass(frozen=True)
class Expected:
    """Digests (hex) the client declared for the body, checked before anything is kept."""

    md5: str | None = None
    sha256: str | None = None

    @classmethod
    def from_headers(cls, content_md5: str | None, sha256: str | None) -> Expected:
        """Parse Content-MD5 (base64) and X-Checksum-SHA256 (hex or base64) up front."""
        return cls(
            md5=_decode_digest(content_md5, 16, "Content-MD5") if content_md5 else None,
            sha256=_decode_digest(sha256, 32, "X-Checksum-SHA256") if sha256 else None,
        )


@dataclass(frozen=True)
class Upload:
    """Everything about a new version except its bytes."""

    identifier: str
    filename: str
    content_type: str
    metadata: list[tuple[str, str]]


class ObjectService:
    """Create, replace, read, list, patch and delete a user's objects."""

    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        max_object_size: int,
        clock: Callable[[], datetime] = utcnow,
        inline_max: int = INLINE_MAX,  # 0: every body to the blob store
    ) -> None:
        self.meta = meta
        self.blobs = blobs
        self.max_object_size = max_object_size
        self.clock = clock
        self.inline_max = inline_max

    @staticmethod
    def new_identifier() -> str:
        """A fresh identifier for uploads that did not name one."""
        return uuid.uuid4().hex

    def write_blob(self, chunks: Iterable[Chunk], expected: Expected | None = None) -> BlobInfo:
        """Keep a body of up to inline_max bytes for its row, stream a larger one durably into
        the blob store; then check the declared digests."""
        want_md5 = expected is not None and expected.md5 is not None
        rest = iter(chunks)
        head: list[Chunk] = []
        held = 0
        for chunk in rest:
            head.append(chunk)
            held += len(chunk)
            if held > self.inline_max:
                break
        if self.inline_max and held <= self.inline_max:
            if held > self.max_object_size:
                raise TooLarge.over(self.max_object_size)
            blob = _inline_blob(b"".join(head), want_md5)
        else:
            stream = itertools.chain(head, rest)
            head = []  # the chain alone holds the first pieces, and lets go of them once sent
            blob = self.blobs.put(stream, self.max_object_size, md5=want_md5)
        if expected and not _digests_match(blob, expected):
            self.discard(blob)
            raise BadRequest("The body does not match the digest sent with it.", code="bad_digest")
        return blob

    def discard(self, blob: BlobInfo) -> None:
        """Drop a blob that will not become an object."""
        if blob.inline is None:
            self.blobs.delete(blob.blob_id)

    def create(self, owner_id: str, upload: Upload, blob: BlobInfo) -> ObjectRecord:
        """Add a new object; 409 if the owner already uses the identifier."""
        try:
            record = self._record(owner_id, upload, blob)
            self.meta.insert_object(record)
        except ObjectExists:
            self.discard(blob)
            raise Conflict(
                "You already have an object with that identifier.", code="identifier_exists"
            ) from None
        except BaseException as exc:
            self._discard_unless_maybe_stored(blob, exc)
            raise
        return record

    def _discard_unless_maybe_stored(self, blob: BlobInfo, exc: BaseException) -> None:
        """Delete a new blob only when its row surely was not written.

        When the metadata store did not answer, the write may have been applied with only its
        acknowledgement lost: deleting the blob then would leave a row without bytes. Keeping
        it costs at worst an orphan, which fsck removes.
        """
        if blob.inline is not None:
            return  # nothing outside the row: nothing to keep or delete
        definite = isinstance(exc, MosError) and (
            exc.status < 500 or isinstance(exc, InsufficientStorage)
        )
        if definite:
            self.discard(blob)
        else:
            log.warning("kept blob %s after an unclear failure (%r); fsck removes it"
                        " if no row points at it", blob.blob_id, exc)

    def put(
        self,
        owner_id: str,
        upload: Upload,
        blob: BlobInfo,
        if_match: list[str] | None = None,
        if_none_match: list[str] | None = None,
    ) -> tuple[ObjectRecord, bool]:
        """Create or atomically replace; returns the record and whether it was created."""
        try:
            record, old = self._put(owner_id, upload, blob, if_match, if_none_match)
        except BaseException as exc:
            self._discard_unless_maybe_stored(blob, exc)
            raise
        if old is not None:
            # Only after the new row is committed: a reader sees old bytes or new, never none.
            self._drop_blob(old)
        return record, old is None

    def _put(
        self,
        owner_id: str,
        upload: Upload,
        blob: BlobInfo,
        if_match: list[str] | None,
        if_none_match: list[str] | None,
    ) -> tuple[ObjectRecord, ObjectRecord | None]:
        record = self._record(owner_id, upload, blob)
        if if_match is None:
            # Most PUTs create: try the insert first and read the row only if it exists. A
            # successful insert also satisfies any If-None-Match (nothing existed to match).
            try:
                self.meta.insert_object(record)
                return record, None
            except ObjectExists:
                pass
        for _ in range(_SWAP_ATTEMPTS):
            current = self.meta.get_object(owner_id, upload.identifier)
            if if_match is not None and not _matches(current, if_match):
                raise PreconditionFailed()
            if if_none_match is not None and _matches(current, if_none_match):
                raise PreconditionFailed()
            if current is None:
                try:
                    self.meta.insert_object(record)
                    return record, None
                except ObjectExists:
                    continue  # a concurrent creator won; look again
            swapped = replace(
                record, created_at=current.created_at, revision=current.revision + 1
            )
            if self.meta.swap_object(swapped, current):
                return swapped, current
        raise Conflict("The object changed too often to be replaced; retry.", code="conflict")

    def _record(self, owner_id: str, upload: Upload, blob: BlobInfo) -> ObjectRecord:
        check_identifier(upload.identifier)
        metadata = check_metadata(upload.metadata)
        now = self.clock()
        return ObjectRecord(
            owner_id=owner_id, identifier=upload.identifier, blob_id=blob.blob_id,
            filename=upload.filename, content_type=upload.content_type, size=blob.size,
            sha256=blob.sha256, created_at=now, updated_at=now, metadata=metadata,
            inline=blob.inline,
        )

    def get(self, owner_id: str, identifier: str) -> ObjectRecord:
        """The owner's object, or 404 (also for identifiers that cannot exist)."""
        check_identifier(identifier)
        record = self.meta.get_object(owner_id, identifier)
        if record is None:
            raise NotFound()
        return record

    def open(self, owner_id: str, identifier: str) -> tuple[UserRecord, ObjectRecord, BinaryIO]:
        """The owner, the current version and its bytes, opened; 401 if the owner is gone.

        The owner is read with the object (one store call for the hottest route), so the
        caller needs no separate check that the token's user still exists. An open reader
        survives a replace.
        """
        check_identifier(identifier)
        for _ in range(_SWAP_ATTEMPTS):
            user, record = self.meta.get_user_and_object(owner_id, identifier)
            if user is None:
                raise Unauthorized()
            if record is None:
                raise NotFound()
            if record.inline is not None:
                return user, record, io.BytesIO(record.inline)
            try:
                return user, record, self.blobs.open(record.blob_id)
            except BlobMissing:
                # Replaced or deleted between the read of the row and the open: look again.
                continue
        log.error("object %r of %s points at a missing blob; restore it or delete the object",
                  identifier, owner_id)
        raise MosError("The object's bytes are missing from storage.", code="data_missing")

    def delete(self, owner_id: str, identifier: str) -> ObjectRecord:
        """Remove the row first, then the bytes (DESIGN.md's delete order)."""
        check_identifier(identifier)
        record = self.meta.delete_object(owner_id, identifier)
        if record is None:
            raise NotFound()
        self._drop_blob(record)
        return record

    def _drop_blob(self, old: ObjectRecord) -> None:
        """Delete the blob of a row that is gone; failing here leaves an orphan, no error."""
        if old.inline is not None:
            return  # the bytes went with the row
        try:
            self.blobs.delete(old.blob_id)
        except (OSError, Unavailable):
            # The row is gone, so the object is gone for the user; fsck removes the orphan.
            log.warning("could not delete blob %s; mos fsck --repair will", old.blob_id)

    def list(
        self, owner_id: str, prefix: str = "", after: str | None = None, limit: int = 1000
    ) -> tuple[list[str], str | None]:
        """A page of identifiers in byte order and the `after` value for the next page."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise BadRequest("limit must be between 1 and 1000.", code="invalid_parameter")
        page = self.meta.list_identifiers(owner_id, prefix, after, limit + 1)
        if len(page) > limit:
            return page[:limit], page[limit - 1]
        return page, None

    def patch_metadata(
        self, owner_id: str, identifier: str, patch: Mapping[str, object]
    ) -> ObjectRecord:
        """Apply an RFC 7396 merge patch to the user metadata."""
        check_identifier(identifier)
        for name, value in patch.items():
            if value is not None and not isinstance(value, str):
                raise InvalidMetadata(
                    f"Metadata field {name[:64]!r} must be a string, or null to remove it."
                )
        for _ in range(_SWAP_ATTEMPTS):
            current = self.meta.get_object(owner_id, identifier)
            if current is None:
                raise NotFound()
            merged = dict(current.metadata)
            for name, value in patch.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = str(value)
            merged = check_metadata(merged.items())
            now = self.clock()
            if self.meta.set_metadata(owner_id, identifier, merged, now, current):
                return replace(
                    current, metadata=merged, updated_at=now, revision=current.revision + 1
                )
        raise Conflict("The object changed too often to be patched; retry.", code="conflict")


def _matches(current: ObjectRecord | None, if_match: list[str]) -> bool:
    if current is None:
        return False
    return "*" in if_match or current.sha256 in if_match


def _inline_blob(data: bytes, md5: bool) -> BlobInfo:
    """A small body's digests, with the bytes kept for its row under a fresh id."""
    return BlobInfo(
        blob_id=INLINE_PREFIX + uuid.uuid4().hex, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest() if md5 else None,
        inline=data,
    )


def _digests_match(blob: BlobInfo, expected: Expected) -> bool:
    return expected.md5 in (None, blob.md5) and expected.sha256 in (None, blob.sha256)


def _decode_digest(value: str, size: int, header: str) -> str:
    """Hex of a digest sent as hex or base64; bad_digest if it is neither or the wrong size."""
    v = value.strip()
    if len(v) == 2 * size and all(c in "0123456789abcdefABCDEF" for c in v):
        return v.lower()
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise BadRequest(f"{header} is not a valid digest.", code="bad_digest")
    return raw.hex()
