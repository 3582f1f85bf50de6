"""Streamed request bodies: raw chunks and multipart parts, never the whole body in memory."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import IO, Any, cast

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
)

from mos.errors import BadRequest, InvalidIdentifier, InvalidMetadata
from mos.services.names import (
    MAX_FIELD_VALUE_BYTES,
    MAX_FIELDS,
    MAX_METADATA_BYTES,
    check_content_type,
    check_identifier,
)
from mos.serving import socket_body
from mos.stores.base import Chunk

CHUNK = 1024 * 1024
FILE_PART = "file"
IDENTIFIER_FIELD = "file_identifier"
_HEADROOM = 64 * 1024


class IncompleteBody(BadRequest):
    """The client sent fewer bytes than it declared, or the connection broke."""

    code = "incomplete_body"
    message = "The request body ended before it was complete."


def raw_chunks(
    environ: dict[str, Any], stream: IO[bytes], declared_length: int | None
) -> Iterator[Chunk]:
    """Read the body in large chunks (from Gunicorn's socket directly where it can); fail if
    it ends short of Content-Length."""
    direct = socket_body(environ, CHUNK)
    pieces = direct if direct is not None else iter(functools.partial(stream.read, CHUNK), b"")
    received = 0
    while True:
        try:
            chunk = next(pieces, b"")
        except Exception as exc:  # the server's reader fails in its own ways on a broken body
            raise IncompleteBody() from exc
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if declared_length is not None and received < declared_length:
        raise IncompleteBody()


class MultipartUpload:
    """Parse multipart/form-data as it arrives: the file part streams, fields are kept."""

    def __init__(self, body: Iterator[Chunk], boundary: bytes) -> None:
        self._body = body
        # The decoder's limit bounds its buffer: one chunk of the body plus what a part's
        # headers or a field may hold. Events are drained after every chunk, so file data
        # never piles up; headers that never end hit this limit.
        self._decoder = MultipartDecoder(boundary, max_form_memory_size=CHUNK + _HEADROOM)
        self.fields: list[tuple[str, str]] = []
        self.identifier: str | None = None
        self.filename: str | None = None
        self.content_type: str | None = None
        self.saw_file = False
        self._total = 0
        self._complete = False
        self._part: Field | File | None = None
        self._value = bytearray()

    def file_chunks(self) -> Iterator[bytes]:
        """Yield the bytes of the `file` part, parsing the fields around it as they come."""
        for data in self._body:
            # The decoder copies into its own buffer, so a bytearray does as well as bytes.
            self._receive(cast(bytes, data))
            yield from self._events()
            if self._complete:
                break
        if not self._complete:
            self._receive(None)
            yield from self._events()
        if not self._complete:
            raise BadRequest("The multipart body ends before its closing boundary.",
                             code="invalid_multipart")

    def _receive(self, data: bytes | None) -> None:
        try:
            self._decoder.receive_data(data)
        except RequestEntityTooLarge:
            raise BadRequest("A multipart part header is too long.",
                             code="invalid_multipart") from None
        except ValueError as exc:
            raise BadRequest(f"Malformed multipart body: {exc}", code="invalid_multipart") from exc

    def _events(self) -> Iterator[bytes]:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError as exc:
                raise BadRequest(f"Malformed multipart body: {exc}",
                                 code="invalid_multipart") from exc
            if isinstance(event, NeedData):
                return
            if isinstance(event, Epilogue):
                self._complete = True
                return
            if isinstance(event, File):
                self._start_file(event)
                self._part, self._value = event, bytearray()
            elif isinstance(event, Field) and event.name == FILE_PART:
                # `curl -F 'file=<x'` sends no filename=, so Werkzeug calls it a field;
                # the bytes are still the object's and must stream, not pile up in memory.
                as_file = File(name=event.name, filename="", headers=event.headers)
                self._start_file(as_file)
                self._part, self._value = as_file, bytearray()
            elif isinstance(event, Field):
                self._part, self._value = event, bytearray()
            elif isinstance(event, Data):
                if isinstance(self._part, File):
                    if event.data:
                        yield event.data
                else:
                    self._value += event.data
                    if len(self._value) > MAX_FIELD_VALUE_BYTES:
                        raise InvalidMetadata("A form field is longer than 8 KiB.")
                if not event.more_data:
                    if isinstance(self._part, Field):
                        self._add_field(self._part.name, bytes(self._value))
                    self._part, self._value = None, bytearray()

    def _start_file(self, event: File) -> None:
        if event.name != FILE_PART:
            raise BadRequest(
                f"Unexpected file part {event.name!r}: send the bytes in the part named 'file'.",
                code="invalid_multipart",
            )
        if self.saw_file:
            raise BadRequest("Only one 'file' part is allowed.", code="invalid_multipart")
        self.saw_file = True
        self.filename = _clean_filename(event.filename or "")
        given = event.headers.get("Content-Type")
        self.content_type = check_content_type(given) if given else None

    def _add_field(self, name: str, raw: bytes) -> None:
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            if name == IDENTIFIER_FIELD:
                raise InvalidIdentifier("A file identifier must be valid UTF-8.") from None
            raise InvalidMetadata(f"Form field {name!r} is not valid UTF-8.") from None
        if name == IDENTIFIER_FIELD:
            if self.identifier is not None:
                raise InvalidIdentifier("file_identifier is given more than once.")
            # Judge it as soon as it arrives, so a bad one stops the upload early.
            self.identifier = check_identifier(value)
            return
        self._total += len(name.encode()) + len(raw)
        if self._total > MAX_METADATA_BYTES:
            raise InvalidMetadata("Metadata is larger than 64 KiB in all.")
        if len(self.fields) >= MAX_FIELDS:
            raise InvalidMetadata("At most 100 metadata fields are allowed.")
        self.fields.append((name, value))


def _clean_filename(name: str) -> str:
    """Keep the last path segment of a client filename, without control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable())[:255]
