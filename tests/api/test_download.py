"""GET and HEAD /data/file/<identifier>: headers, ranges and conditional requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING

import pytest

# Every test runs with small bodies in their rows and in blob files (tests/api/conftest.py).
BOTH_BYTE_HOMES = True

if TYPE_CHECKING:
    from conftest import Api

DATA = b"abcdefghijklmnopqrstuvwxyz"  # 26 bytes


@pytest.fixture
def stored(api: Api) -> str:
    """An object 'docs/alphabet.txt' holding DATA as text/plain; returns its etag."""
    resp = api.put("docs/alphabet.txt", DATA, {"Content-Type": "text/plain"})
    assert resp.status_code == 201
    return str(resp.get_json()["etag"])


def http_date(t: datetime) -> str:
    """An IMF-fixdate."""
    return format_datetime(t.astimezone(UTC), usegmt=True)


def test_get_streams_the_bytes_with_all_headers(api: Api, stored: str) -> None:
    """200 with the bytes and every header API.md lists."""
    resp = api.get("docs/alphabet.txt")
    assert resp.status_code == 200
    assert resp.data == DATA
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"' == stored
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == 'attachment; filename=alphabet.txt'
    assert resp.headers.get("X-Request-ID")
    modified = parsedate_to_datetime(resp.headers["Last-Modified"])
    updated = datetime.strptime(
        api.metadata("docs/alphabet.txt").get_json()["updated_at"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=UTC)
    assert modified == updated


def test_get_content_disposition_quotes_filenames_with_spaces(api: Api) -> None:
    """A filename with spaces or quotes stays one correctly quoted parameter."""
    assert api.put("q/my%20%22best%22%20file.txt", b"x").status_code == 201
    disposition = api.get("q/my%20%22best%22%20file.txt").headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="my \\"best\\" file.txt"' in disposition


def test_get_non_ascii_filename_uses_filename_star(api: Api) -> None:
    """A non-ASCII filename is sent as filename*=UTF-8''... with an ASCII fallback."""
    assert api.put("cv/r%C3%A9sum%C3%A9%20%E2%98%83.pdf", b"%PDF").status_code == 201
    disposition = api.get("cv/r%C3%A9sum%C3%A9%20%E2%98%83.pdf").headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%98%83.pdf" in disposition
    fallback = disposition.split("filename=", 1)[1].split(";", 1)[0]
    assert fallback.isascii()


def test_get_non_ascii_filename_from_multipart(api: Api) -> None:
    """A UTF-8 filename given in the multipart part comes back in filename*."""
    assert api.upload_file("cv", b"%PDF", "résumé.pdf", "application/pdf").status_code == 201
    assert api.metadata("cv").get_json()["filename"] == "résumé.pdf"
    disposition = api.get("cv").headers["Content-Disposition"]
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in disposition


def test_head_has_the_headers_and_no_body(api: Api, stored: str) -> None:
    """HEAD answers GET's headers without a body."""
    get = api.get("docs/alphabet.txt")
    head = api.head("docs/alphabet.txt")
    assert head.status_code == 200
    assert head.data == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Accept-Ranges",
                 "Content-Disposition"):
        assert head.headers[name] == get.headers[name], name
    assert head.headers["Content-Length"] == str(len(DATA))


def test_head_missing_is_404_without_body(api: Api) -> None:
    """HEAD of a missing object is 404."""
    resp = api.head("nope")
    assert resp.status_code == 404
    assert resp.data == b""


def test_get_missing_is_404(api: Api) -> None:
    """GET of a missing object is 404 not_found."""
    api.check_error(api.get("nope"), 404, "not_found")


@pytest.mark.parametrize(
    ("header", "content_range", "expected"),
    [
        ("bytes=0-9", "bytes 0-9/26", DATA[:10]),
        ("bytes=-5", "bytes 21-25/26", DATA[-5:]),
        ("bytes=5-", "bytes 5-25/26", DATA[5:]),
        ("bytes=25-25", "bytes 25-25/26", DATA[25:]),
        ("bytes=10-1000", "bytes 10-25/26", DATA[10:]),
        ("bytes=-100", "bytes 0-25/26", DATA),
    ],
)
def test_single_range_is_206(
    api: Api, stored: str, header: str, content_range: str, expected: bytes
) -> None:
    """One byte range answers 206 with Content-Range and just those bytes."""
    resp = api.get("docs/alphabet.txt", {"Range": header})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == content_range
    assert resp.headers["Content-Length"] == str(len(expected))
    assert resp.data == expected
    assert resp.headers["ETag"] == stored


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "items=0-1", "bytes=5-2"])
def test_multiple_or_invalid_ranges_answer_the_whole_object(
    api: Api, stored: str, header: str
) -> None:
    """Ranges the server does not serve are ignored: 200 with all the bytes."""
    resp = api.get("docs/alphabet.txt", {"Range": header})
    assert resp.status_code == 200
    assert resp.data == DATA


@pytest.mark.parametrize("header", ["bytes=26-", "bytes=100-200", "bytes=30-40"])
def test_unsatisfiable_range_is_416_json(api: Api, stored: str, header: str) -> None:
    """A range past the end answers 416 JSON with Content-Range: bytes */size."""
    resp = api.get("docs/alphabet.txt", {"Range": header})
    api.check_error(resp, 416)
    assert resp.headers["Content-Range"] == "bytes */26"


def test_range_with_matching_if_range_is_206(api: Api, stored: str) -> None:
    """If-Range with the current etag keeps the range."""
    resp = api.get("docs/alphabet.txt", {"Range": "bytes=0-1", "If-Range": stored})
    assert resp.status_code == 206
    assert resp.data == b"ab"


def test_range_with_stale_if_range_is_full_200(api: Api, stored: str) -> None:
    """If-Range with another etag answers the whole object."""
    resp = api.get("docs/alphabet.txt", {"Range": "bytes=0-1", "If-Range": f'"{"0" * 64}"'})
    assert resp.status_code == 200
    assert resp.data == DATA


def test_if_none_match_matching_is_304(api: Api, stored: str) -> None:
    """If-None-Match with the current etag answers 304 without a body."""
    resp = api.get("docs/alphabet.txt", {"If-None-Match": stored})
    assert resp.status_code == 304
    assert resp.data == b""
    assert resp.headers["ETag"] == stored


def test_if_none_match_star_is_304(api: Api, stored: str) -> None:
    """If-None-Match: * matches any existing version."""
    assert api.get("docs/alphabet.txt", {"If-None-Match": "*"}).status_code == 304


def test_if_none_match_other_etag_is_200(api: Api, stored: str) -> None:
    """If-None-Match with another etag answers the bytes."""
    resp = api.get("docs/alphabet.txt", {"If-None-Match": f'"{"0" * 64}"'})
    assert resp.status_code == 200
    assert resp.data == DATA


def test_head_if_none_match_matching_is_304(api: Api, stored: str) -> None:
    """HEAD honours If-None-Match too."""
    assert api.head("docs/alphabet.txt", {"If-None-Match": stored}).status_code == 304


def test_if_modified_since_in_the_future_is_304(api: Api, stored: str) -> None:
    """Not modified since a later date: 304."""
    later = http_date(datetime.now(UTC) + timedelta(days=1))
    resp = api.get("docs/alphabet.txt", {"If-Modified-Since": later})
    assert resp.status_code == 304
    assert resp.data == b""


def test_if_modified_since_last_modified_is_304(api: Api, stored: str) -> None:
    """If-Modified-Since equal to Last-Modified: 304."""
    last = api.get("docs/alphabet.txt").headers["Last-Modified"]
    assert api.get("docs/alphabet.txt", {"If-Modified-Since": last}).status_code == 304


def test_if_modified_since_in_the_past_is_200(api: Api, stored: str) -> None:
    """Modified since an earlier date: the bytes."""
    earlier = http_date(datetime.now(UTC) - timedelta(days=1))
    resp = api.get("docs/alphabet.txt", {"If-Modified-Since": earlier})
    assert resp.status_code == 200
    assert resp.data == DATA


def test_if_match_matching_is_200(api: Api, stored: str) -> None:
    """If-Match with the current etag answers the bytes."""
    resp = api.get("docs/alphabet.txt", {"If-Match": stored})
    assert resp.status_code == 200
    assert resp.data == DATA


def test_if_match_mismatch_is_412(api: Api, stored: str) -> None:
    """If-Match with another etag answers 412 precondition_failed."""
    resp = api.get("docs/alphabet.txt", {"If-Match": f'"{"0" * 64}"'})
    api.check_error(resp, 412, "precondition_failed")


def test_if_match_mismatch_on_range_is_412(api: Api, stored: str) -> None:
    """If-Match wins over Range."""
    resp = api.get("docs/alphabet.txt", {"If-Match": '"nope"', "Range": "bytes=0-1"})
    api.check_error(resp, 412, "precondition_failed")


def test_if_unmodified_since_in_the_past_is_412(api: Api, stored: str) -> None:
    """If-Unmodified-Since before the last change answers 412."""
    earlier = http_date(datetime.now(UTC) - timedelta(days=1))
    resp = api.get("docs/alphabet.txt", {"If-Unmodified-Since": earlier})
    api.check_error(resp, 412, "precondition_failed")


def test_get_after_replace_serves_new_bytes_and_etag(api: Api, stored: str) -> None:
    """A replace changes the bytes, the etag and Content-Length."""
    api.put("docs/alphabet.txt", b"new", {"Content-Type": "text/plain"})
    resp = api.get("docs/alphabet.txt")
    assert resp.data == b"new"
    assert resp.headers["Content-Length"] == "3"
    assert resp.headers["ETag"] != stored
    assert api.get("docs/alphabet.txt", {"If-None-Match": stored}).status_code == 200


def test_get_empty_object(api: Api) -> None:
    """A zero-byte object answers 200 with Content-Length 0."""
    api.put("empty", b"")
    resp = api.get("empty")
    assert resp.status_code == 200
    assert resp.data == b""
    assert resp.headers["Content-Length"] == "0"
