"""Rules for usernames, passwords, file identifiers and user metadata (API.md limits)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mos.errors import BadRequest, InvalidIdentifier, InvalidMetadata

USERNAME = re.compile(r"[A-Za-z0-9_.\-]{3,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_IDENTIFIER_BYTES = 1024
MAX_CONTENT_TYPE_CHARS = 255
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# type/subtype, then parameters of printable ASCII only: it is echoed as a header later.
_MEDIA_TYPE = re.compile(rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t\x21-\x7e]*)*")
MAX_FIELD_NAME_CHARS = 128
MAX_FIELD_VALUE_BYTES = 8 * 1024
MAX_FIELDS = 100
MAX_METADATA_BYTES = 64 * 1024


def check_username(username: str) -> str:
    """Return the username if it follows the rules, else raise invalid_username."""
    if not USERNAME.fullmatch(username):
        raise BadRequest(
            "A username is 3-64 characters of A-Z a-z 0-9 _ . -", code="invalid_username"
        )
    return username


def check_password(password: str) -> str:
    """Return the password if its length is allowed, else raise invalid_password."""
    if not 8 <= len(password) <= 1024:
        raise BadRequest("A password is 8-1024 characters long.", code="invalid_password")
    if not is_utf8(password):
        raise BadRequest("A password must be valid Unicode text.", code="invalid_password")
    return password


def is_utf8(text: str) -> bool:
    """Whether the text can be encoded as UTF-8 (JSON can carry lone surrogates; UTF-8 not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_content_type(value: str) -> str:
    """Return a media type that is safe to store and send back as a header, else raise."""
    if len(value) > MAX_CONTENT_TYPE_CHARS or not _MEDIA_TYPE.fullmatch(value):
        raise BadRequest(
            "The content type must be a media type such as text/plain, of at most 255"
            " printable ASCII characters.",
            code="invalid_content_type",
        )
    return value


def check_identifier(identifier: str) -> str:
    """Return the identifier if it is 1-1024 bytes of UTF-8 without control characters."""
    try:
        size = len(identifier.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidIdentifier("A file identifier must be valid UTF-8.") from None
    if not 1 <= size <= MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier("A file identifier is 1-1024 bytes of UTF-8.")
    if _CONTROL.search(identifier):
        raise InvalidIdentifier("A file identifier must not contain control characters.")
    if identifier.startswith("/"):
        raise InvalidIdentifier("A file identifier must not start with '/'.")
    return identifier


def check_metadata(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Build a metadata dict from (name, value) pairs, enforcing every limit of API.md."""
    result: dict[str, str] = {}
    total = 0
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidMetadata("Metadata names and values must be strings.")
        if not 1 <= len(name) <= MAX_FIELD_NAME_CHARS or not name.isprintable():
            raise InvalidMetadata(
                f"Metadata field name {name[:64]!r} must be 1-128 printable characters."
            )
        if name in result:
            raise InvalidMetadata(f"Metadata field {name!r} is given more than once.")
        try:
            value_bytes = len(value.encode("utf-8"))
            total += len(name.encode("utf-8")) + value_bytes
        except UnicodeEncodeError:
            raise InvalidMetadata("Metadata must be valid UTF-8.") from None
        if value_bytes > MAX_FIELD_VALUE_BYTES:
            raise InvalidMetadata(f"Metadata field {name!r} is longer than 8 KiB.")
        if len(result) >= MAX_FIELDS:
            raise InvalidMetadata("At most 100 metadata fields are allowed.")
        if total > MAX_METADATA_BYTES:
            raise InvalidMetadata("Metadata is larger than 64 KiB in all.")
        result[name] = value
    return result
