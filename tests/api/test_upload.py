"""Uploads: multipart POST /data/file and raw PUT /data/file/<identifier>."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from typing import TYPE_CHECKING, Any

import pytest

# Every test runs with small bodies in their rows and in blob files (tests/api/conftest.py).
BOTH_BYTE_HOMES = True

if TYPE_CHECKING:
    from conftest import Api

RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
UPLOAD_KEYS = {"message", "file_identifier", "size", "sha256", "etag", "content_type",
               "created_at"}
SMALL_LIMIT = 1000  # tests/api/conftest.py's small_api limit
BOUNDARY = "----mos-test-boundary-7MA4YWxkTrZu0gW"  # conftest's default boundary


def sha(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def assert_nothing_stored(api: Api, blobs: int = 0) -> None:
    """No temp file is left, and exactly `blobs` copies of bytes are stored."""
    assert api.stored() == (blobs, 0)


# --- multipart POST -------------------------------------------------------------------------


def test_multipart_upload_answers_201_with_every_field(api: Api) -> None:
    """The 201 body has the seed message and size, sha256, quoted etag, type and time."""
    data = b"hello, object store\n" * 10
    resp = api.upload_file("docs/hello.txt", data, "hello.txt", "text/plain")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) == UPLOAD_KEYS
    assert body["message"] == "File uploaded successfully"
    assert body["file_identifier"] == "docs/hello.txt"
    assert body["size"] == len(data)
    assert body["sha256"] == sha(data)
    assert body["etag"] == f'"{sha(data)}"'
    assert body["content_type"] == "text/plain"
    assert RFC3339_Z.fullmatch(body["created_at"])
    got = api.get("docs/hello.txt")
    assert got.status_code == 200
    assert got.data == data
    assert api.stored() == (1, 0)


def test_multipart_keeps_filename_and_content_type_of_the_part(api: Api) -> None:
    """The file part's filename and Content-Type are kept."""
    resp = api.upload_file("pic", b"\x89PNG...", "holiday.png", "image/png")
    assert resp.status_code == 201
    doc = api.metadata("pic").get_json()
    assert doc["filename"] == "holiday.png"
    assert doc["content_type"] == "image/png"
    assert api.get("pic").headers["Content-Type"] == "image/png"


def test_multipart_fields_before_and_after_the_file_are_metadata(api: Api) -> None:
    """Text fields on both sides of the file part become user metadata."""
    parts = [
        api.Part("before", "1"),
        api.Part("file_identifier", "m"),
        api.Part("file", b"bytes", "m.bin", "application/octet-stream"),
        api.Part("after", "2"),
        api.Part("unicode", "été ☃"),
    ]
    resp = api.upload(parts)
    assert resp.status_code == 201, resp.get_json()
    assert api.metadata("m").get_json()["metadata"] == {
        "before": "1", "after": "2", "unicode": "été ☃"
    }


def test_multipart_identifier_after_the_file_counts(api: Api) -> None:
    """file_identifier may come after the file part."""
    parts = [api.Part("file", b"late", "late.txt", "text/plain"),
             api.Part("file_identifier", "late/id")]
    resp = api.upload(parts)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["file_identifier"] == "late/id"
    assert api.get("late/id").data == b"late"
    assert "file_identifier" not in api.metadata("late/id").get_json()["metadata"]


def test_multipart_without_identifier_generates_one(api: Api) -> None:
    """No file_identifier: the server makes a unique one and returns it."""
    first = api.upload_file(None, b"one")
    second = api.upload_file(None, b"two")
    assert first.status_code == second.status_code == 201
    a, b = first.get_json()["file_identifier"], second.get_json()["file_identifier"]
    assert a and b and a != b
    assert api.get(a).data == b"one"
    assert api.get(b).data == b"two"
    assert sorted(api.list_all()) == sorted([a, b])


def test_multipart_werkzeug_client_encoding_works(api: Api) -> None:
    """The test client's own multipart encoder (like requests/curl -F) is understood."""
    resp = api.client.post(
        "/data/file",
        data={"file": (io.BytesIO(b"via client"), "c.txt", "text/plain"),
              "file_identifier": "c", "colour": "blue"},
        headers=api.auth, content_type="multipart/form-data",
    )
    assert resp.status_code == 201, resp.get_json()
    assert api.get("c").data == b"via client"
    assert api.metadata("c").get_json()["metadata"] == {"colour": "blue"}


def test_multipart_large_file_spanning_chunks(api: Api) -> None:
    """A file larger than the 1 MiB read chunk arrives whole, with fields after it."""
    data = bytes(range(256)) * (10 * 1024) + b"--" + b"\r\n--tail"  # ~2.5 MiB
    parts = [api.Part("file_identifier", "big"),
             api.Part("file", data, "big.bin", "application/octet-stream"),
             api.Part("k", "v")]
    resp = api.upload(parts)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["size"] == len(data)
    assert resp.get_json()["sha256"] == sha(data)
    assert api.get("big").data == data
    assert api.metadata("big").get_json()["metadata"] == {"k": "v"}


def test_multipart_empty_file_is_stored(api: Api) -> None:
    """A zero-byte file is a valid object."""
    resp = api.upload_file("empty", b"")
    assert resp.status_code == 201
    assert resp.get_json()["size"] == 0
    assert resp.get_json()["sha256"] == sha(b"")
    assert api.get("empty").data == b""


def test_multipart_existing_identifier_is_409_and_changes_nothing(api: Api) -> None:
    """A second upload to a used identifier gets identifier_exists; the first stays."""
    first = api.upload_file("dup", b"original", "o.txt", "text/plain", {"v": "1"})
    assert first.status_code == 201
    before = api.metadata("dup").get_json()
    resp = api.upload_file("dup", b"intruder", "i.bin", "application/x-other", {"v": "2"})
    api.check_error(resp, 409, "identifier_exists")
    assert api.get("dup").data == b"original"
    assert api.metadata("dup").get_json() == before
    assert_nothing_stored(api, blobs=1)


def test_multipart_existing_identifier_from_put_is_409(api: Api) -> None:
    """An object made by PUT also blocks a multipart create."""
    assert api.put("made-by-put", b"put").status_code == 201
    api.check_error(api.upload_file("made-by-put", b"post"), 409, "identifier_exists")
    assert api.get("made-by-put").data == b"put"


def test_multipart_without_file_part_is_400_missing_file(api: Api) -> None:
    """No `file` part gets missing_file and leaves no blob or temp file."""
    resp = api.upload([api.Part("file_identifier", "nofile"), api.Part("k", "v")])
    api.check_error(resp, 400, "missing_file")
    assert_nothing_stored(api)
    api.check_error(api.metadata("nofile"), 404, "not_found")


def test_multipart_with_no_parts_is_400_missing_file(api: Api) -> None:
    """A well-formed form with no parts at all gets missing_file."""
    resp = api.client.post(
        "/data/file", data=f"--{api_boundary()}--\r\n".encode(),
        headers=api.headers({"Content-Type": f"multipart/form-data; boundary={api_boundary()}"}),
    )
    api.check_error(resp, 400, "missing_file")
    assert_nothing_stored(api)


def api_boundary() -> str:
    """A boundary for hand-written bodies."""
    return "xYzZY"


def post_raw_multipart(api: Api, body: bytes, content_type: str) -> Any:
    """POST /data/file with a raw body and Content-Type."""
    return api.client.post("/data/file", data=body,
                           headers=api.headers({"Content-Type": content_type}))


@pytest.mark.parametrize(
    "body",
    [
        b"this is not a multipart body at all",
        b"--xYzZY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc",
        b"--xYzZY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n",
        b"--xYzZY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n",
        b"--xYzZY\r\nContent-Disposition: form-data; name=\"file\"; filena",
    ],
    ids=["garbage", "truncated-in-data", "truncated-before-boundary", "truncated-headers",
         "truncated-header-line"],
)
def test_multipart_malformed_or_truncated_body_is_400(api: Api, body: bytes) -> None:
    """A body that is not a complete multipart document gets invalid_multipart."""
    resp = post_raw_multipart(api, body, "multipart/form-data; boundary=xYzZY")
    api.check_error(resp, 400, "invalid_multipart")
    assert_nothing_stored(api)
    assert api.list_all() == []


def test_multipart_empty_body_is_400(api: Api) -> None:
    """An empty body holds no file: 400 (missing_file or invalid_multipart), nothing stored."""
    resp = post_raw_multipart(api, b"", "multipart/form-data; boundary=xYzZY")
    assert api.check_error(resp, 400)["code"] in {"missing_file", "invalid_multipart"}
    assert_nothing_stored(api)


def test_multipart_truncated_after_whole_file_is_400(api: Api) -> None:
    """A body cut before its closing boundary stores nothing, even if the file part ended."""
    full = api.multipart_body([api.Part("file_identifier", "t"),
                               api.Part("file", b"x" * 5000, "t.bin"),
                               api.Part("later", "field")], "xYzZY")
    cut = full[: full.index(b'name="later"')]
    resp = post_raw_multipart(api, cut, "multipart/form-data; boundary=xYzZY")
    api.check_error(resp, 400, "invalid_multipart")
    assert_nothing_stored(api)
    api.check_error(api.get("t"), 404, "not_found")


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; charset=utf-8",
     "multipart/form-data; boundary=" + "b" * 71],
)
def test_multipart_without_valid_boundary_is_400(api: Api, content_type: str) -> None:
    """A multipart Content-Type without a usable boundary gets invalid_multipart."""
    body = api.multipart_body([api.Part("file", b"abc", "a.txt")], "xYzZY")
    api.check_error(post_raw_multipart(api, body, content_type), 400, "invalid_multipart")
    assert_nothing_stored(api)


def test_multipart_two_file_parts_is_400(api: Api) -> None:
    """Only one `file` part is allowed."""
    resp = api.upload([api.Part("file_identifier", "two"),
                       api.Part("file", b"one", "1.txt", "text/plain"),
                       api.Part("file", b"two", "2.txt", "text/plain")])
    api.check_error(resp, 400, "invalid_multipart")
    assert_nothing_stored(api)
    api.check_error(api.get("two"), 404, "not_found")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"file": "abc"}'),
        ("text/plain", b"abc"),
        ("application/octet-stream", b"abc"),
        ("application/x-www-form-urlencoded", b"file=abc&file_identifier=x"),
        ("multipart/mixed; boundary=xYzZY", b"--xYzZY--\r\n"),
    ],
)
def test_post_that_is_not_multipart_form_data_is_415(
    api: Api, content_type: str, body: bytes
) -> None:
    """Only multipart/form-data is accepted on POST /data/file."""
    api.check_error(post_raw_multipart(api, body, content_type), 415, "unsupported_media_type")
    assert_nothing_stored(api)


def test_post_without_content_type_is_415(api: Api) -> None:
    """A body with no declared type is refused."""
    resp = api.client.post("/data/file", data=b"abc", headers=api.auth)
    api.check_error(resp, 415, "unsupported_media_type")


BAD_IDENTIFIERS = {
    "empty": "",
    "leading-slash": "/etc/passwd",
    "only-slash": "/",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "escape": "a\x1bb",
    "del": "a\x7fb",
    "too-long-ascii": "a" * 1025,
    "too-long-utf8": "é" * 513,
}


@pytest.mark.parametrize("identifier", BAD_IDENTIFIERS.values(), ids=BAD_IDENTIFIERS.keys())
def test_multipart_invalid_identifier_is_400(api: Api, identifier: str) -> None:
    """Identifiers breaking API.md's rules get invalid_identifier and store nothing."""
    resp = api.upload_file(identifier, b"payload")
    api.check_error(resp, 400, "invalid_identifier")
    assert_nothing_stored(api)
    assert api.list_all() == []


def test_multipart_invalid_identifier_after_file_stores_nothing(api: Api) -> None:
    """A bad identifier that arrives after the bytes still leaves nothing behind."""
    resp = api.upload([api.Part("file", b"z" * 3000, "z"), api.Part("file_identifier", "/bad")])
    api.check_error(resp, 400, "invalid_identifier")
    assert_nothing_stored(api)


def test_multipart_non_utf8_identifier_is_400_invalid_identifier(api: Api) -> None:
    """A file_identifier field that is not UTF-8 breaks the identifier rule."""
    resp = api.upload([api.Part("file_identifier", b"bad\xff\xfe"),
                       api.Part("file", b"payload", "p.bin")])
    api.check_error(resp, 400, "invalid_identifier")
    assert_nothing_stored(api)


@pytest.mark.parametrize("identifier", ["a" * 1024, "é" * 512, "x", "photos/2026/a.jpg"])
def test_multipart_identifier_at_the_limits_is_accepted(api: Api, identifier: str) -> None:
    """1 to 1024 bytes of UTF-8 are accepted."""
    resp = api.upload_file(identifier, b"ok")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["file_identifier"] == identifier
    assert api.list_all() == [identifier]


def metadata_case(name: str) -> list[tuple[str, bytes | str]]:
    """Field parts breaking one metadata rule."""
    cases: dict[str, list[tuple[str, bytes | str]]] = {
        "101-fields": [(f"f{i:03d}", "v") for i in range(101)],
        "value-over-8KiB": [("big", "v" * (8 * 1024 + 1))],
        "value-over-8KiB-utf8": [("big", "é" * (4 * 1024 + 1))],
        "total-over-64KiB": [(f"f{i}", "v" * 8000) for i in range(9)],
        "duplicate-name": [("k", "1"), ("k", "2")],
        "non-utf8-value": [("k", b"\xff\xfe bad")],
        "name-over-128": [("n" * 129, "v")],
    }
    return cases[name]


METADATA_CASES = ["101-fields", "value-over-8KiB", "value-over-8KiB-utf8", "total-over-64KiB",
                  "duplicate-name", "non-utf8-value", "name-over-128"]


@pytest.mark.parametrize("case", METADATA_CASES)
@pytest.mark.parametrize("where", ["before", "after"])
def test_multipart_invalid_metadata_is_400(api: Api, case: str, where: str) -> None:
    """Metadata over API.md's limits gets invalid_metadata, wherever the fields sit."""
    fields = [api.Part(name, value) for name, value in metadata_case(case)]
    file_part = api.Part("file", b"payload" * 100, "p.bin")
    ident = api.Part("file_identifier", "meta")
    parts = [ident, *fields, file_part] if where == "before" else [ident, file_part, *fields]
    api.check_error(api.upload(parts), 400, "invalid_metadata")
    assert_nothing_stored(api)
    api.check_error(api.get("meta"), 404, "not_found")


def test_multipart_metadata_at_the_limits_is_accepted(api: Api) -> None:
    """100 fields, and 8 KiB values within 64 KiB in all, are accepted."""
    hundred = [api.Part(f"f{i:03d}", "v") for i in range(100)]
    resp = api.upload([api.Part("file_identifier", "h"), *hundred, api.Part("file", b"x", "x")])
    assert resp.status_code == 201, resp.get_json()
    assert len(api.metadata("h").get_json()["metadata"]) == 100
    # 7 x (2 + 8192) + (2 + 8190) = 65550 > 65536, so use 7 full values and a smaller one.
    big = [api.Part(f"b{i}", "v" * 8192) for i in range(7)]
    big.append(api.Part("b7", "v" * (65536 - 7 * (2 + 8192) - 2)))
    resp = api.upload([api.Part("file_identifier", "k"), *big, api.Part("file", b"x", "x")])
    assert resp.status_code == 201, resp.get_json()


# --- raw PUT --------------------------------------------------------------------------------


def test_put_creates_201(api: Api) -> None:
    """PUT on a new identifier creates it with the upload body of API.md."""
    data = b"raw body bytes"
    resp = api.put("photos/2026/a.jpg", data, {"Content-Type": "image/jpeg"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) == UPLOAD_KEYS
    assert body["file_identifier"] == "photos/2026/a.jpg"
    assert body["size"] == len(data)
    assert body["sha256"] == sha(data)
    assert body["etag"] == f'"{sha(data)}"'
    assert body["content_type"] == "image/jpeg"
    assert RFC3339_Z.fullmatch(body["created_at"])
    doc = api.metadata("photos/2026/a.jpg").get_json()
    assert doc["filename"] == "a.jpg"
    assert doc["content_type"] == "image/jpeg"
    assert api.get("photos/2026/a.jpg").data == data


def test_put_without_content_type_is_octet_stream(api: Api) -> None:
    """No Content-Type: the object's type is application/octet-stream."""
    resp = api.client.put("/data/file/blob", data=b"x", headers=api.auth)
    assert resp.status_code == 201
    assert resp.get_json()["content_type"] == "application/octet-stream"
    assert api.get("blob").headers["Content-Type"] == "application/octet-stream"


def test_put_keeps_content_type_parameters(api: Api) -> None:
    """The Content-Type is kept as sent, parameters included."""
    resp = api.put("t.txt", b"x", {"Content-Type": "text/plain; charset=utf-8"})
    assert resp.get_json()["content_type"] == "text/plain; charset=utf-8"
    assert api.get("t.txt").headers["Content-Type"] == "text/plain; charset=utf-8"


def test_put_replace_answers_200_and_replaces_everything(api: Api) -> None:
    """A second PUT replaces bytes, type and metadata exactly; old bytes are deleted."""
    first = api.put("doc", b"version one", {"Content-Type": "text/plain", "X-Meta-Colour": "red",
                                            "X-Meta-Old": "gone soon"})
    assert first.status_code == 201
    assert api.metadata("doc").get_json()["metadata"] == {"colour": "red", "old": "gone soon"}
    second = api.put("doc", b"version two!", {"Content-Type": "application/json",
                                              "X-META-Colour": "blue", "x-meta-NEW": "yes"})
    assert second.status_code == 200, second.get_json()
    body = second.get_json()
    assert set(body) == UPLOAD_KEYS
    assert body["sha256"] == sha(b"version two!")
    assert body["size"] == len(b"version two!")
    assert body["content_type"] == "application/json"
    doc = api.metadata("doc").get_json()
    assert doc["metadata"] == {"colour": "blue", "new": "yes"}
    assert doc["sha256"] == sha(b"version two!")
    assert api.get("doc").data == b"version two!"
    assert api.list_all() == ["doc"]
    assert_nothing_stored(api, blobs=1)


def test_put_replace_without_meta_headers_clears_metadata(api: Api) -> None:
    """A replacing PUT with no X-Meta-* headers leaves no metadata."""
    api.put("doc", b"1", {"X-Meta-A": "1"})
    assert api.put("doc", b"2").status_code == 200
    assert api.metadata("doc").get_json()["metadata"] == {}


def test_put_replaces_an_object_made_by_multipart(api: Api) -> None:
    """PUT replaces a multipart-made object, fields included."""
    api.upload_file("mp", b"old", "old.txt", "text/plain", {"field": "x"})
    assert api.put("mp", b"new").status_code == 200
    doc = api.metadata("mp").get_json()
    assert doc["metadata"] == {}
    assert doc["content_type"] == "application/octet-stream"
    assert api.get("mp").data == b"new"


def test_put_meta_header_names_are_lower_cased(api: Api) -> None:
    """X-Meta-* names are stored lower-case, values as sent (UTF-8)."""
    value = "Grüße ☃"
    resp = api.put("m", b"x", {"X-Meta-Author-Name": "Ann", "X-Meta-CITY": "Paris",
                               "X-Meta-Greeting": value.encode().decode("latin-1")})
    assert resp.status_code == 201, resp.get_json()
    assert api.metadata("m").get_json()["metadata"] == {
        "author-name": "Ann", "city": "Paris", "greeting": value
    }


def test_put_meta_header_with_empty_name_is_400(api: Api) -> None:
    """'X-Meta-' alone names an empty field: invalid_metadata."""
    api.check_error(api.put("m", b"x", {"X-Meta-": "v"}), 400, "invalid_metadata")
    assert_nothing_stored(api)


def test_put_too_many_meta_headers_is_400(api: Api) -> None:
    """101 X-Meta-* headers get invalid_metadata and store nothing."""
    headers = {f"X-Meta-F{i:03d}": "v" for i in range(101)}
    api.check_error(api.put("m", b"x", headers), 400, "invalid_metadata")
    assert_nothing_stored(api)


def test_put_meta_value_over_8_kib_is_400(api: Api) -> None:
    """A header value over 8 KiB gets invalid_metadata."""
    api.check_error(api.put("m", b"x", {"X-Meta-Big": "v" * (8 * 1024 + 1)}), 400,
                    "invalid_metadata")
    assert_nothing_stored(api)


def test_put_meta_total_over_64_kib_is_400(api: Api) -> None:
    """Metadata over 64 KiB in all gets invalid_metadata."""
    headers = {f"X-Meta-F{i}": "v" * 8000 for i in range(9)}
    api.check_error(api.put("m", b"x", headers), 400, "invalid_metadata")
    assert_nothing_stored(api)


def test_put_meta_non_utf8_value_is_400(api: Api) -> None:
    """A header value that is not UTF-8 gets invalid_metadata."""
    api.check_error(api.put("m", b"x", {"X-Meta-Bad": "\xff\xfe"}), 400, "invalid_metadata")
    assert_nothing_stored(api)


def test_put_invalid_metadata_on_replace_keeps_the_old_version(api: Api) -> None:
    """A refused replace leaves the stored object as it was."""
    api.put("keep", b"old", {"X-Meta-A": "1"})
    resp = api.put("keep", b"new", {"X-Meta-Big": "v" * (8 * 1024 + 1)})
    api.check_error(resp, 400, "invalid_metadata")
    assert api.get("keep").data == b"old"
    assert api.metadata("keep").get_json()["metadata"] == {"a": "1"}
    assert_nothing_stored(api, blobs=1)


def test_put_if_none_match_star_creates_when_absent(api: Api) -> None:
    """If-None-Match: * allows the create."""
    assert api.put("once", b"1", {"If-None-Match": "*"}).status_code == 201


def test_put_if_none_match_star_is_412_when_it_exists(api: Api) -> None:
    """If-None-Match: * refuses to replace, and nothing changes."""
    api.put("once", b"first")
    resp = api.put("once", b"second", {"If-None-Match": "*"})
    api.check_error(resp, 412, "precondition_failed")
    assert api.get("once").data == b"first"
    assert_nothing_stored(api, blobs=1)


def test_put_if_none_match_current_etag_is_412(api: Api) -> None:
    """If-None-Match with the current etag refuses; another etag allows the replace."""
    etag = api.put("inm", b"one").get_json()["etag"]
    api.check_error(api.put("inm", b"two", {"If-None-Match": etag}), 412, "precondition_failed")
    assert api.get("inm").data == b"one"
    assert api.put("inm", b"two", {"If-None-Match": f'"{"0" * 64}"'}).status_code == 200
    assert api.get("inm").data == b"two"


def test_put_if_match_right_etag_replaces(api: Api) -> None:
    """If-Match with the current etag replaces that version."""
    etag = api.put("v", b"one").get_json()["etag"]
    resp = api.put("v", b"two", {"If-Match": etag})
    assert resp.status_code == 200, resp.get_json()
    assert api.get("v").data == b"two"


def test_put_if_match_in_a_list_replaces(api: Api) -> None:
    """If-Match with a list holding the current etag replaces."""
    etag = api.put("v", b"one").get_json()["etag"]
    resp = api.put("v", b"two", {"If-Match": f'"{"0" * 64}", {etag}'})
    assert resp.status_code == 200, resp.get_json()


def test_put_if_match_wrong_etag_is_412(api: Api) -> None:
    """If-Match with another etag refuses, and nothing changes."""
    api.put("v", b"one", {"X-Meta-A": "1"})
    resp = api.put("v", b"two", {"If-Match": f'"{sha(b"something else")}"'})
    api.check_error(resp, 412, "precondition_failed")
    assert api.get("v").data == b"one"
    assert api.metadata("v").get_json()["metadata"] == {"a": "1"}
    assert_nothing_stored(api, blobs=1)


def test_put_if_match_stale_etag_is_412(api: Api) -> None:
    """The etag of a replaced version no longer matches."""
    old = api.put("v", b"one").get_json()["etag"]
    api.put("v", b"two")
    api.check_error(api.put("v", b"three", {"If-Match": old}), 412, "precondition_failed")
    assert api.get("v").data == b"two"


@pytest.mark.parametrize("if_match", ["*", f'"{"a" * 64}"'])
def test_put_if_match_on_missing_object_is_412(api: Api, if_match: str) -> None:
    """If-Match on an object that does not exist creates nothing."""
    resp = api.put("absent", b"x", {"If-Match": if_match})
    api.check_error(resp, 412, "precondition_failed")
    api.check_error(api.get("absent"), 404, "not_found")
    assert_nothing_stored(api)


def test_put_content_md5_correct_is_stored(api: Api) -> None:
    """A matching Content-MD5 (base64) is accepted."""
    data = b"checked bytes"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - RFC 1864
    resp = api.put("md5", data, {"Content-MD5": md5})
    assert resp.status_code == 201, resp.get_json()
    assert api.get("md5").data == data


@pytest.mark.parametrize("encoding", ["hex", "HEX", "base64"])
def test_put_checksum_sha256_correct_is_stored(api: Api, encoding: str) -> None:
    """A matching X-Checksum-SHA256, hex or base64, is accepted."""
    data = b"checked bytes"
    digest = hashlib.sha256(data)
    value = {"hex": digest.hexdigest(), "HEX": digest.hexdigest().upper(),
             "base64": base64.b64encode(digest.digest()).decode()}[encoding]
    resp = api.put("sum", data, {"X-Checksum-SHA256": value})
    assert resp.status_code == 201, resp.get_json()
    assert api.get("sum").data == data


def test_put_both_digests_correct_is_stored(api: Api) -> None:
    """Both headers may be sent together."""
    data = b"both"
    headers = {
        "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324
        "X-Checksum-SHA256": hashlib.sha256(data).hexdigest(),
    }
    assert api.put("both", data, headers).status_code == 201


def wrong_digests() -> dict[str, dict[str, str]]:
    """Digest headers that do not match b'payload'."""
    other = b"other bytes"
    return {
        "md5-mismatch": {
            "Content-MD5": base64.b64encode(hashlib.md5(other).digest()).decode()  # noqa: S324
        },
        "md5-hex-not-base64": {"Content-MD5": hashlib.md5(other).hexdigest()},  # noqa: S324
        "md5-garbage": {"Content-MD5": "not base64!"},
        "sha256-hex-mismatch": {"X-Checksum-SHA256": hashlib.sha256(other).hexdigest()},
        "sha256-b64-mismatch": {
            "X-Checksum-SHA256": base64.b64encode(hashlib.sha256(other).digest()).decode()
        },
        "sha256-garbage": {"X-Checksum-SHA256": "zz"},
        "md5-ok-sha256-wrong": {
            "Content-MD5": base64.b64encode(hashlib.md5(b"payload").digest()).decode(),  # noqa: S324
            "X-Checksum-SHA256": hashlib.sha256(other).hexdigest(),
        },
    }


@pytest.mark.parametrize("headers", wrong_digests().values(), ids=wrong_digests().keys())
def test_put_digest_mismatch_is_400_and_stores_nothing(
    api: Api, headers: dict[str, str]
) -> None:
    """A digest that does not match the body gets bad_digest; nothing is stored."""
    api.check_error(api.put("dig", b"payload", headers), 400, "bad_digest")
    api.check_error(api.get("dig"), 404, "not_found")
    assert_nothing_stored(api)


@pytest.mark.parametrize("headers", wrong_digests().values(), ids=wrong_digests().keys())
def test_put_digest_mismatch_on_replace_changes_nothing(
    api: Api, headers: dict[str, str]
) -> None:
    """A replace with a bad digest leaves the old version in place."""
    api.put("dig", b"original", {"X-Meta-A": "1"})
    before = api.metadata("dig").get_json()
    api.check_error(api.put("dig", b"payload", headers), 400, "bad_digest")
    assert api.get("dig").data == b"original"
    assert api.metadata("dig").get_json() == before
    assert_nothing_stored(api, blobs=1)


def test_put_large_body_spanning_chunks(api: Api) -> None:
    """A body over several read chunks is stored whole."""
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB
    resp = api.put("big", data, {"X-Checksum-SHA256": sha(data)})
    assert resp.status_code == 201
    assert api.get("big").data == data


def test_put_chunked_body_without_content_length(api: Api) -> None:
    """A body sent without Content-Length (chunked) is read to its end."""
    data = b"streamed " * 1000
    resp = api.client.put("/data/file/chunked", input_stream=io.BytesIO(data),
                          headers=api.headers({"Transfer-Encoding": "chunked"}),
                          environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["size"] == len(data)
    assert api.get("chunked").data == data


def test_put_body_shorter_than_content_length_stores_nothing(api: Api) -> None:
    """A body that ends before its declared length (a broken upload) is refused."""
    resp = api.client.put("/data/file/cut", input_stream=io.BytesIO(b"x" * 10),
                          headers=api.auth, environ_overrides={"CONTENT_LENGTH": "1000"})
    api.check_error(resp, 400)
    api.check_error(api.get("cut"), 404, "not_found")
    assert_nothing_stored(api)


def test_multipart_body_shorter_than_content_length_stores_nothing(api: Api) -> None:
    """A multipart body cut short of its declared length is refused."""
    full = api.multipart_body([api.Part("file_identifier", "cut"),
                               api.Part("file", b"a" * 5000, "a.bin")])
    resp = api.client.post(
        "/data/file", input_stream=io.BytesIO(full[:3000]),
        headers=api.headers({"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}),
        environ_overrides={"CONTENT_LENGTH": str(len(full))},
    )
    api.check_error(resp, 400)
    api.check_error(api.get("cut"), 404, "not_found")
    assert_nothing_stored(api)


# --- the object size limit (MOS_MAX_OBJECT_SIZE) --------------------------------------------


def test_put_at_the_size_limit_is_accepted(small_api: Api) -> None:
    """An object of exactly the limit fits."""
    assert small_api.put("edge", b"x" * SMALL_LIMIT).status_code == 201


def test_put_over_the_size_limit_is_413(small_api: Api) -> None:
    """A declared body over the limit gets too_large; nothing is stored."""
    small_api.check_error(small_api.put("big", b"x" * (SMALL_LIMIT + 1)), 413, "too_large")
    small_api.check_error(small_api.get("big"), 404, "not_found")
    assert_nothing_stored(small_api)


def test_put_streamed_over_the_size_limit_is_413(small_api: Api) -> None:
    """A body without Content-Length is stopped at the limit while streaming."""
    resp = small_api.client.put(
        "/data/file/big", input_stream=io.BytesIO(b"x" * (SMALL_LIMIT * 50)),
        headers=small_api.headers({"Transfer-Encoding": "chunked"}),
        environ_overrides={"wsgi.input_terminated": True},
    )
    small_api.check_error(resp, 413, "too_large")
    small_api.check_error(small_api.get("big"), 404, "not_found")
    assert_nothing_stored(small_api)


def test_put_over_the_size_limit_on_replace_keeps_the_old_version(small_api: Api) -> None:
    """A too-large replace leaves the stored version alone."""
    small_api.put("keep", b"small")
    small_api.check_error(small_api.put("keep", b"x" * (SMALL_LIMIT + 1)), 413, "too_large")
    assert small_api.get("keep").data == b"small"
    assert_nothing_stored(small_api, blobs=1)


def test_post_at_the_size_limit_is_accepted(small_api: Api) -> None:
    """A multipart file of exactly the limit fits (the form overhead does not count)."""
    resp = small_api.upload_file("edge", b"x" * SMALL_LIMIT, fields={"k": "v"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["size"] == SMALL_LIMIT


@pytest.mark.parametrize("size", [SMALL_LIMIT + 1, SMALL_LIMIT * 10, 2 * 1024 * 1024])
def test_post_over_the_size_limit_is_413(small_api: Api, size: int) -> None:
    """A multipart file over the limit gets too_large; no blob, no temp file."""
    resp = small_api.upload_file("big", b"x" * size)
    small_api.check_error(resp, 413, "too_large")
    small_api.check_error(small_api.get("big"), 404, "not_found")
    assert_nothing_stored(small_api)
    assert small_api.list_all() == []


@pytest.mark.parametrize(
    "prefix",
    [b"This is a preamble.\r\n", b"", b"\r\n\r\n"],
    ids=["preamble", "none", "blank-lines"],
)
@pytest.mark.parametrize("padding", [b"", b"  \t"], ids=["plain", "padded-delimiter"])
def test_multipart_preamble_and_delimiter_padding_are_allowed(
    api: Api, prefix: bytes, padding: bytes
) -> None:
    """RFC 2046: text before the first delimiter, and spaces after it, are not part of it."""
    body = (prefix + b"--" + BOUNDARY.encode() + padding + b"\r\n"
            b'Content-Disposition: form-data; name="file_identifier"\r\n\r\nrfc\r\n'
            b"--" + BOUNDARY.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
            b"the bytes\r\n--" + BOUNDARY.encode() + b"--\r\n")
    resp = api.client.post("/data/file", data=body, headers=api.headers(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    assert resp.status_code == 201, resp.get_json()
    assert api.get("rfc").data == b"the bytes"


@pytest.mark.parametrize(
    "headers",
    [b"X-Other: 1\r\n", b"Content-Disposition: form-data\r\n",
     b'Content-Disposition: form-data; name=""\r\n'],
    ids=["no-content-disposition", "no-name", "empty-name"],
)
def test_multipart_part_without_a_name_is_400_before_the_file(
    api: Api, headers: bytes, expect_error: Any
) -> None:
    """A part that does not say its name is malformed, and is refused as soon as it is seen."""
    body = (b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\nvalue\r\n"
            b"--" + BOUNDARY.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
            b"the bytes\r\n--" + BOUNDARY.encode() + b"--\r\n")
    resp = api.client.post("/data/file", data=body, headers=api.headers(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    expect_error(resp, 400, "invalid_multipart")
    assert api.stored() == (0, 0)


def test_multipart_without_an_opening_boundary_in_64_kib_is_400(
    api: Api, expect_error: Any
) -> None:
    """A preamble longer than 64 KiB is not looked through for ever."""
    body = b"x" * (70 * 1024) + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    resp = api.client.post("/data/file", data=body, headers=api.headers(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    expect_error(resp, 400, "invalid_multipart")
