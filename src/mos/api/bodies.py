"""Streamed request bodies: raw chunks and multipart parts, never the whole body in memory."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import IO, Any, cast

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header

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
# Per part: python-multipart refuses more headers, or a longer one, as malformed.
MAX_PART_HEADERS = 16
MAX_PART_HEADER_BYTES = 64 * 1024
# Text before the first boundary (RFC 2046 allows it) is skipped up to this much.
MAX_PREAMBLE = 64 * 1024
# python-multipart logs a warning for every malformed body: clients could flood the log with
# what is already answered as 400 invalid_multipart.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


class IncompleteBody(BadRequest):
    """The client sent fewer bytes than it declared, or the connection broke."""

    code = "incomplete_body"
    message = "The request body ended before it was complete."


def raw_chunks(
    environ: dict[str, Any], stream: IO[bytes], declared_length: int | None
) -> Iterator[bytes | bytearray]:
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
    """Parse multipart/form-data as it arrives: the file part streams, fields are kept.

    python-multipart finds the boundaries with bytes.find and hands each part's data over
    as offsets into the received buffer, which is passed on as a memoryview: the file's
    bytes are not copied on the way to the blob store. Werkzeug's decoder, used before,
    copied every MiB several times: 1.7-1.8 s of CPU per GiB here against 0.13 s
    (`python -m bench.multipart_cost`).
    """

    def __init__(self, body: Iterator[bytes | bytearray], boundary: bytes) -> None:
        self._body = body
        self._delimiter = b"--" + boundary
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )
        self.fields: list[tuple[str, str]] = []
        self.identifier: str | None = None
        self.filename: str | None = None
        self.content_type: str | None = None
        self.saw_file = False
        self._total = 0
        self._complete = False
        self._is_file = False
        self._name = ""
        self._headers: list[tuple[str, str]] = []
        self._hname = bytearray()
        self._hvalue = bytearray()
        self._value = bytearray()
        self._out: list[Chunk] = []

    def file_chunks(self) -> Iterator[Chunk]:
        """Yield the bytes of the `file` part, parsing the fields around it as they come."""
        for data in self._from_first_delimiter():
            try:
                # It searches with bytes methods, which bytearrays have as well.
                self._parser.write(cast(bytes, data))
            except MultipartParseError as exc:
                raise BadRequest(f"Malformed multipart body: {exc}",
                                 code="invalid_multipart") from exc
            yield from self._out
            self._out = []
            if self._complete:
                break
        if not self._complete:
            raise BadRequest("The multipart body ends before its closing boundary.",
                             code="invalid_multipart")

    def _from_first_delimiter(self) -> Iterator[bytes | bytearray]:
        """The body from its first delimiter line on, that line without trailing spaces.

        RFC 2046 allows a preamble before the first delimiter and spaces after it, which
        python-multipart does not; both are dropped here (only the first chunk is copied).
        """
        held = bytearray()
        for data in self._body:
            held += data
            at = 0 if held.startswith(self._delimiter) else held.find(b"\n" + self._delimiter)
            if at > MAX_PREAMBLE or (at < 0 and len(held) > MAX_PREAMBLE + len(self._delimiter)):
                raise BadRequest("The multipart body has no opening boundary.",
                                 code="invalid_multipart")
            line_end = held.find(b"\n", at + 1) if at >= 0 else -1
            if line_end >= 0:
                start = at if at == 0 else at + 1
                rest = held[start + len(self._delimiter):line_end + 1]
                if not rest.strip(b" \t\r\n"):  # padding only: a normal opening delimiter
                    held[start:line_end + 1] = self._delimiter + b"\r\n"
                yield bytes(held[start:])
                yield from self._body
                return

    def _part_begin(self) -> None:
        self._headers, self._is_file, self._name = [], False, ""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        try:
            name, value = self._hname.decode(), self._hvalue.decode()
        except UnicodeDecodeError:
            raise BadRequest("A multipart part header is not valid UTF-8.",
                             code="invalid_multipart") from None
        self._headers.append((name.strip(" \t"), value.strip(" \t")))
        self._hname, self._hvalue = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        headers = Headers(self._headers)
        _disposition, params = parse_options_header(headers.get("Content-Disposition", ""))
        if not params.get("name"):
            raise BadRequest("A multipart part has no Content-Disposition with a name.",
                             code="invalid_multipart")
        self._name = params["name"]
        filename = params.get("filename")
        # `curl -F 'file=<x'` sends no filename=, yet the bytes are the object's and must
        # stream, not pile up in memory: the part named `file` is the file either way.
        if filename is not None or self._name == FILE_PART:
            self._start_file(self._name, filename or "", headers)
            self._is_file = True
        self._value = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            if end > start:
                self._out.append(memoryview(data)[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_VALUE_BYTES:
            raise InvalidMetadata("A form field is longer than 8 KiB.")

    def _part_end(self) -> None:
        if not self._is_file:
            self._add_field(self._name, bytes(self._value))
        self._value = bytearray()

    def _end(self) -> None:
        self._complete = True

    def _start_file(self, name: str, filename: str, headers: Headers) -> None:
        if name != FILE_PART:
            raise BadRequest(
                f"Unexpected file part {name!r}: send the bytes in the part named 'file'.",
                code="invalid_multipart",
            )
        if self.saw_file:
            raise BadRequest("Only one 'file' part is allowed.", code="invalid_multipart")
        self.saw_file = True
        self.filename = _clean_filename(filename)
        given = headers.get("Content-Type")
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
