"""GET and PATCH /data/metadata/<identifier>, and DELETE /data/file/<identifier>."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

# Every test runs with small bodies in their rows and in blob files (tests/api/conftest.py).
BOTH_BYTE_HOMES = True

if TYPE_CHECKING:
    from conftest import Api

RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DOC_KEYS = {"file_identifier", "owner", "filename", "content_type", "size", "sha256", "etag",
            "created_at", "updated_at", "metadata"}


@pytest.fixture
def obj(api: Api) -> str:
    """'reports/q1.csv' with two metadata fields; returns its identifier."""
    resp = api.upload_file("reports/q1.csv", b"a,b\n1,2\n", "q1.csv", "text/csv",
                           {"author": "ann", "dept": "sales"})
    assert resp.status_code == 201
    return "reports/q1.csv"


# --- GET ------------------------------------------------------------------------------------


def test_metadata_document_has_every_field(api: Api, obj: str) -> None:
    """The document of API.md: system fields at the top, user metadata under `metadata`."""
    resp = api.metadata(obj)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    doc = resp.get_json()
    assert set(doc) == DOC_KEYS
    digest = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert doc["file_identifier"] == "reports/q1.csv"
    assert doc["owner"] == "alice"
    assert doc["filename"] == "q1.csv"
    assert doc["content_type"] == "text/csv"
    assert doc["size"] == 8
    assert doc["sha256"] == digest
    assert doc["etag"] == f'"{digest}"'
    assert RFC3339_Z.fullmatch(doc["created_at"])
    assert RFC3339_Z.fullmatch(doc["updated_at"])
    assert doc["created_at"] <= doc["updated_at"]
    assert doc["metadata"] == {"author": "ann", "dept": "sales"}


def test_owner_is_the_username_as_registered(make_api: Callable[[str], Api]) -> None:
    """owner is the owner's username."""
    carol = make_api("Carol.B")
    carol.put("x", b"1")
    assert carol.metadata("x").get_json()["owner"] == "Carol.B"


def test_user_metadata_can_not_overwrite_system_fields(api: Api) -> None:
    """Fields named like system fields stay under `metadata`."""
    fields = {"size": "999", "owner": "mallory", "sha256": "0", "etag": "x", "metadata": "m"}
    resp = api.upload_file("sys", b"abc", "abc.txt", "text/plain", fields)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["size"] == 3
    doc = api.metadata("sys").get_json()
    assert doc["size"] == 3
    assert doc["owner"] == "alice"
    assert doc["sha256"] == hashlib.sha256(b"abc").hexdigest()
    assert doc["metadata"] == fields
    put = api.put("sys", b"abcd", {"X-Meta-Size": "1", "X-Meta-Owner": "mallory"})
    assert put.status_code == 200
    doc = api.metadata("sys").get_json()
    assert (doc["size"], doc["owner"]) == (4, "alice")
    assert doc["metadata"] == {"size": "1", "owner": "mallory"}


def test_metadata_missing_is_404(api: Api) -> None:
    """A missing object has no metadata."""
    api.check_error(api.metadata("nope"), 404, "not_found")


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_sets_changes_and_removes(api: Api, obj: str) -> None:
    """A merge patch adds, changes and (with null) removes fields; answers the document."""
    resp = api.patch(obj, {"new": "1", "author": "bea", "dept": None})
    assert resp.status_code == 200, resp.get_json()
    doc = resp.get_json()
    assert set(doc) == DOC_KEYS
    assert doc["metadata"] == {"author": "bea", "new": "1"}
    assert api.metadata(obj).get_json()["metadata"] == {"author": "bea", "new": "1"}


def test_patch_removing_an_absent_field_is_fine(api: Api, obj: str) -> None:
    """null for a field that is not there changes nothing."""
    resp = api.patch(obj, {"never-there": None})
    assert resp.status_code == 200
    assert resp.get_json()["metadata"] == {"author": "ann", "dept": "sales"}


def test_patch_empty_object_changes_nothing(api: Api, obj: str) -> None:
    """{} is a valid patch that keeps the metadata."""
    resp = api.patch(obj, {})
    assert resp.status_code == 200
    assert resp.get_json()["metadata"] == {"author": "ann", "dept": "sales"}


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json",
                                          "application/json; charset=utf-8"])
def test_patch_accepts_both_json_media_types(api: Api, obj: str, content_type: str) -> None:
    """application/merge-patch+json and application/json are accepted."""
    resp = api.patch(obj, {"k": "v"}, content_type)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["metadata"]["k"] == "v"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_patch_other_media_type_is_415(api: Api, obj: str, content_type: str) -> None:
    """Bodies not declared as JSON get unsupported_media_type."""
    resp = api.patch(obj, json.dumps({"k": "v"}), content_type)
    api.check_error(resp, 415, "unsupported_media_type")
    assert api.metadata(obj).get_json()["metadata"] == {"author": "ann", "dept": "sales"}


@pytest.mark.parametrize("value", [1, 1.5, True, False, ["a"], {"nested": "x"}])
def test_patch_non_string_value_is_400(api: Api, obj: str, value: object) -> None:
    """Values other than strings and null get invalid_metadata; nothing changes."""
    resp = api.patch(obj, {"ok": "fine", "bad": value})
    api.check_error(resp, 400, "invalid_metadata")
    assert api.metadata(obj).get_json()["metadata"] == {"author": "ann", "dept": "sales"}


@pytest.mark.parametrize("body", ["{not json", '["k", "v"]', '"k"', "null", "42", ""])
def test_patch_malformed_or_non_object_body_is_400(api: Api, obj: str, body: str) -> None:
    """A body that is not a JSON object is refused with 400."""
    api.check_error(api.patch(obj, body), 400)
    assert api.metadata(obj).get_json()["metadata"] == {"author": "ann", "dept": "sales"}


@pytest.mark.parametrize("name", ["", "n" * 129, "bad\nname", "tab\tname"])
def test_patch_invalid_field_name_is_400(api: Api, obj: str, name: str) -> None:
    """Names must be 1-128 printable characters."""
    api.check_error(api.patch(obj, {name: "v"}), 400, "invalid_metadata")


def test_patch_value_over_8_kib_is_400(api: Api, obj: str) -> None:
    """A value over 8 KiB gets invalid_metadata."""
    api.check_error(api.patch(obj, {"big": "v" * (8 * 1024 + 1)}), 400, "invalid_metadata")


def test_patch_json_body_over_1_mib_is_413(api: Api, obj: str) -> None:
    """A PATCH body over the JSON limit gets too_large."""
    api.check_error(api.patch(obj, {"big": "v" * (1024 * 1024)}), 413, "too_large")


def test_patch_limits_apply_after_merging_field_count(api: Api) -> None:
    """100 fields stored plus one more is over the limit; replacing one is fine."""
    headers = {f"X-Meta-F{i:03d}": "v" for i in range(100)}
    assert api.put("many", b"x", headers).status_code == 201
    api.check_error(api.patch("many", {"one-more": "v"}), 400, "invalid_metadata")
    assert len(api.metadata("many").get_json()["metadata"]) == 100
    assert api.patch("many", {"f000": "changed"}).status_code == 200
    ok = api.patch("many", {"f001": None, "one-more": "v"})
    assert ok.status_code == 200, ok.get_json()
    assert len(ok.get_json()["metadata"]) == 100


def test_patch_limits_apply_after_merging_total_size(api: Api) -> None:
    """Stored fields plus the patch over 64 KiB in all get invalid_metadata."""
    headers = {f"X-Meta-F{i}": "v" * 8000 for i in range(8)}
    assert api.put("fat", b"x", headers).status_code == 201
    before = api.metadata("fat").get_json()
    api.check_error(api.patch("fat", {"f8": "v" * 8000}), 400, "invalid_metadata")
    assert api.metadata("fat").get_json() == before
    assert api.patch("fat", {"f0": None, "f8": "v" * 8000}).status_code == 200


def test_patch_does_not_change_bytes_sha_or_etag(api: Api, obj: str) -> None:
    """Only user metadata changes: bytes, sha256, etag, size, type stay."""
    before = api.metadata(obj).get_json()
    get_before = api.get(obj)
    doc = api.patch(obj, {"k": "v"}).get_json()
    for key in ("file_identifier", "owner", "filename", "content_type", "size", "sha256",
                "etag", "created_at"):
        assert doc[key] == before[key], key
    assert doc["updated_at"] >= before["updated_at"]
    get_after = api.get(obj)
    assert get_after.data == get_before.data
    assert get_after.headers["ETag"] == get_before.headers["ETag"]


def test_patch_missing_object_is_404(api: Api) -> None:
    """PATCH of a missing object is not_found and creates nothing."""
    api.check_error(api.patch("nope", {"k": "v"}), 404, "not_found")
    assert api.list_all() == []


def test_patch_of_non_ascii_identifier(api: Api) -> None:
    """PATCH decodes the identifier like the other routes."""
    api.put("caf%C3%A9/men%C3%BC", b"x")
    resp = api.patch("caf%C3%A9/men%C3%BC", {"k": "v"})
    assert resp.status_code == 200
    assert resp.get_json()["file_identifier"] == "café/menü"


# --- DELETE ---------------------------------------------------------------------------------


def test_delete_answers_200_then_404(api: Api, obj: str) -> None:
    """DELETE answers the seed body; afterwards the object is gone everywhere."""
    assert api.stored() == (1, 0)
    resp = api.delete(obj)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"message": "File deleted", "file_identifier": obj}
    api.check_error(api.get(obj), 404, "not_found")
    api.check_error(api.metadata(obj), 404, "not_found")
    api.check_error(api.delete(obj), 404, "not_found")
    assert api.list_all() == []
    assert api.stored() == (0, 0)


def test_delete_missing_is_404(api: Api) -> None:
    """DELETE of an object that never existed is not_found."""
    api.check_error(api.delete("never"), 404, "not_found")


def test_delete_removes_only_that_object(api: Api) -> None:
    """Other objects and their bytes stay."""
    api.put("a", b"1")
    api.put("b", b"2")
    assert api.delete("a").status_code == 200
    assert api.get("b").data == b"2"
    assert api.stored() == (1, 0)


def test_identifier_can_be_reused_after_delete(api: Api, obj: str) -> None:
    """After a delete, a multipart create with the same identifier is allowed."""
    api.delete(obj)
    resp = api.upload_file(obj, b"again")
    assert resp.status_code == 201
    assert api.get(obj).data == b"again"
    assert api.metadata(obj).get_json()["metadata"] == {}


def test_delete_of_non_ascii_identifier_answers_it_decoded(api: Api) -> None:
    """The answer names the identifier decoded, not percent-encoded."""
    api.put("%E6%97%A5%E6%9C%AC", b"x")
    resp = api.delete("%E6%97%A5%E6%9C%AC")
    assert resp.get_json() == {"message": "File deleted", "file_identifier": "日本"}
