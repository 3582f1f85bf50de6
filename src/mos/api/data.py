"""Data blueprint: upload, download, list, metadata and delete of the caller's objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiflask import APIBlueprint
from flask import Response, g, request
from werkzeug.datastructures import ETags
from werkzeug.routing import PathConverter

from mos.api.bodies import MultipartUpload, raw_chunks
from mos.api.downloads import object_response
from mos.api.requests import (
    current_user,
    json_body,
    login_required,
    services,
    token_required,
)
from mos.errors import (
    BadRequest,
    InvalidIdentifier,
    InvalidMetadata,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from mos.services.names import check_content_type, check_identifier, check_metadata
from mos.services.objects import Expected, Upload, etag_of
from mos.stores.base import ObjectRecord

bp = APIBlueprint("data", __name__, url_prefix="/data", tag="Objects")

FILE_PREFIX = b"/data/file/"
METADATA_PREFIX = b"/data/metadata/"
# Fields and part headers around the file part may add this much to the object's limit.
MULTIPART_OVERHEAD = 1024 * 1024


class IdentifierConverter(PathConverter):
    """Match anything, empty and leading '/' included, so the view can judge it."""

    regex = r"[\s\S]*"  # unlike ".*", also newlines: the view answers 400 for them
    part_isolating = False


def raw_identifier(prefix: bytes) -> str:
    """The identifier as sent: PATH_INFO after the prefix, decoded once as strict UTF-8."""
    path = request.environ.get("PATH_INFO", "").encode("latin-1")
    if not path.startswith(prefix):
        raise InvalidIdentifier("The URL does not name a file identifier.")
    try:
        return check_identifier(path[len(prefix):].decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidIdentifier("A file identifier must be valid UTF-8.") from None


def default_filename(identifier: str) -> str:
    """The identifier's last non-empty segment, for objects uploaded without a filename."""
    segments = [s for s in identifier.split("/") if s]
    return segments[-1] if segments else "file"


def rfc3339(t: datetime) -> str:
    """UTC time as 2026-11-24T13:56:17Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def upload_answer(record: ObjectRecord, message: str) -> dict[str, Any]:
    """The JSON of API.md for a stored upload."""
    return {
        "message": message,
        "file_identifier": record.identifier,
        "size": record.size,
        "sha256": record.sha256,
        "etag": etag_of(record),
        "content_type": record.content_type,
        "created_at": rfc3339(record.created_at),
    }


def metadata_document(record: ObjectRecord, owner: str) -> dict[str, Any]:
    """The metadata document of API.md; user metadata never mixes with system fields."""
    return {
        "file_identifier": record.identifier,
        "owner": owner,
        "filename": record.filename,
        "content_type": record.content_type,
        "size": record.size,
        "sha256": record.sha256,
        "etag": etag_of(record),
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "metadata": record.metadata,
    }


@bp.post("/file")
@login_required
@bp.doc(summary="Upload a file (multipart/form-data)", security="BearerAuth",
        responses=[201, 400, 401, 409, 413, 415, 507])
def upload_multipart() -> tuple[dict[str, Any], int]:
    """Stream the `file` part into the blob store; other fields become metadata."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("The body must be multipart/form-data.")
    boundary = request.mimetype_params.get("boundary", "")
    if not 1 <= len(boundary) <= 70:
        raise BadRequest("The multipart body has no valid boundary.", code="invalid_multipart")
    objects = services().objects
    length = request.content_length
    if length is not None and length > objects.max_object_size + MULTIPART_OVERHEAD:
        raise TooLarge.over(objects.max_object_size)
    body = raw_chunks(request.environ, request.stream, length)
    upload = MultipartUpload(body, boundary.encode("latin-1"))
    blob = objects.write_blob(upload.file_chunks())
    if not upload.saw_file:
        objects.discard(blob)
        raise BadRequest("The form has no part named 'file'.", code="missing_file")
    identifier = upload.identifier or objects.new_identifier()
    record = objects.create(
        current_user().id,
        Upload(
            identifier=identifier,
            filename=upload.filename or default_filename(identifier),
            content_type=upload.content_type or "application/octet-stream",
            metadata=upload.fields,
        ),
        blob,
    )
    return upload_answer(record, "File uploaded successfully"), 201


@bp.put("/file/<ident:identifier>")
@login_required
@bp.doc(summary="Create or replace a file from the raw body", security="BearerAuth",
        responses=[200, 201, 400, 401, 412, 413, 507])
def upload_raw(identifier: str) -> tuple[dict[str, Any], int]:
    """Create (201) or atomically replace (200) an object from the request body."""
    ident = raw_identifier(FILE_PREFIX)
    metadata = header_metadata()
    check_metadata(metadata)
    content_type = check_content_type(
        request.headers.get("Content-Type") or "application/octet-stream"
    )
    expected = Expected.from_headers(
        request.headers.get("Content-MD5"), request.headers.get("X-Checksum-SHA256")
    )
    objects = services().objects
    length = request.content_length
    if length is not None and length > objects.max_object_size:
        raise TooLarge.over(objects.max_object_size)
    blob = objects.write_blob(raw_chunks(request.environ, request.stream, length), expected)
    record, created = objects.put(
        current_user().id,
        Upload(
            identifier=ident,
            filename=default_filename(ident),
            content_type=content_type,
            metadata=metadata,
        ),
        blob,
        if_match=etag_list(request.if_match, "If-Match"),
        # If-None-Match compares weakly (RFC 9110 section 13.1.2), If-Match strongly.
        if_none_match=etag_list(request.if_none_match, "If-None-Match", weak=True),
    )
    if created:
        return upload_answer(record, "File uploaded successfully"), 201
    return upload_answer(record, "File replaced"), 200


def header_metadata() -> list[tuple[str, str]]:
    """User metadata from X-Meta-* headers; names lower-case, values UTF-8."""
    pairs: list[tuple[str, str]] = []
    for name, value in request.headers.items():
        if name.lower().startswith("x-meta-"):
            try:
                # WSGI hands header bytes over as latin-1; clients send UTF-8.
                text = value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise InvalidMetadata(f"Header {name} is not valid UTF-8.") from None
            pairs.append((name[7:].lower(), text))
    return pairs


def etag_list(etags: ETags, header: str, weak: bool = False) -> list[str] | None:
    """The entity tags of a conditional header, '*' for any; None when it is absent."""
    if header not in request.headers:
        return None
    if etags.star_tag:
        return ["*"]
    return list(etags.as_set(include_weak=weak))


@bp.route("/file/<ident:identifier>", methods=["GET", "HEAD"])
@token_required
@bp.doc(summary="Download a file (Range and conditional requests)", security="BearerAuth",
        responses=[200, 206, 304, 401, 404, 412, 416])
def download(identifier: str) -> Response:
    """Stream the bytes through wsgi.file_wrapper, so Gunicorn can use sendfile."""
    try:
        ident = raw_identifier(FILE_PREFIX)
    except InvalidIdentifier:
        if services().accounts.get(g.user_id) is None:
            raise Unauthorized() from None  # a user who is gone learns nothing more
        raise
    # open() reads the token's user with the object and answers 401 if the user is gone.
    g.user, record, f = services().objects.open(g.user_id, ident)
    # The request itself, not the proxy: the response reads it a dozen times.
    return object_response(request._get_current_object(), record, f)  # type: ignore[attr-defined]


@bp.get("/user_file")
@login_required
@bp.doc(summary="List your file identifiers", security="BearerAuth", responses=[200, 400, 401])
def list_files() -> dict[str, Any]:
    """One page of the caller's identifiers in byte order."""
    raw_limit = request.args.get("limit", "1000")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise BadRequest("limit must be an integer.", code="invalid_parameter") from None
    ids, after = services().objects.list(
        current_user().id,
        prefix=request.args.get("prefix", ""),
        after=request.args.get("after"),
        limit=limit,
    )
    return {"file_identifiers": ids, "next": after}


@bp.get("/metadata/<ident:identifier>")
@login_required
@bp.doc(summary="Read a file's metadata", security="BearerAuth", responses=[200, 401, 404])
def get_metadata(identifier: str) -> dict[str, Any]:
    """System fields and user metadata of one object."""
    user = current_user()
    record = services().objects.get(user.id, raw_identifier(METADATA_PREFIX))
    return metadata_document(record, user.username)


@bp.patch("/metadata/<ident:identifier>")
@login_required
@json_body("application/merge-patch+json", "application/json")
@bp.doc(summary="Merge-patch a file's user metadata (RFC 7396)", security="BearerAuth",
        responses=[200, 400, 401, 404, 415])
def patch_metadata(identifier: str) -> dict[str, Any]:
    """Apply the merge patch and answer the new document."""
    user = current_user()
    record = services().objects.patch_metadata(
        user.id, raw_identifier(METADATA_PREFIX), g.json_body
    )
    return metadata_document(record, user.username)


@bp.delete("/file/<ident:identifier>")
@login_required
@bp.doc(summary="Delete a file", security="BearerAuth", responses=[200, 401, 404, 409])
def delete(identifier: str) -> dict[str, Any]:
    """Remove the row, then the bytes."""
    ident = raw_identifier(FILE_PREFIX)
    services().objects.delete(current_user().id, ident)
    return {"message": "File deleted", "file_identifier": ident}
