"""Identifiers in URLs (decoded once, never normalised) and the per-user namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Api

# URL path after /data/file/ -> the identifier it names.
DISTINCT = {
    "a//b": "a//b",
    "a/b": "a/b",
    "x/%2E%2E/y": "x/../y",
    "y": "y",
    "x/y": "x/y",
    "%2E%2E": "..",
    "%2E": ".",
    "a/%2E/b": "a/./b",
    "dir/": "dir/",
    "dir": "dir",
    "dir//": "dir//",
    "trailing%20": "trailing ",
}


def test_unnormalised_identifiers_are_distinct_objects(api: Api) -> None:
    """a//b, x/../y, .., dir/ and dir are separate objects, each with its own bytes."""
    for path, ident in DISTINCT.items():
        resp = api.put(path, ident.encode())
        assert resp.status_code == 201, (path, resp.get_json())
        assert resp.get_json()["file_identifier"] == ident
    for path, ident in DISTINCT.items():
        got = api.get(path)
        assert got.status_code == 200, path
        assert got.data == ident.encode(), path
        assert api.metadata(path).get_json()["file_identifier"] == ident
    expected = sorted(DISTINCT.values(), key=lambda s: s.encode())
    assert api.list_all() == expected


def test_dot_segments_are_not_resolved_on_delete(api: Api) -> None:
    """Deleting x/../y removes that object, not y."""
    api.put("x/%2E%2E/y", b"dots")
    api.put("y", b"plain")
    assert api.delete("x/%2E%2E/y").get_json()["file_identifier"] == "x/../y"
    assert api.get("y").data == b"plain"
    api.check_error(api.get("x/%2E%2E/y"), 404, "not_found")


def test_double_slash_is_not_merged_or_redirected(api: Api) -> None:
    """a//b is not a//b's neighbour a/b, and GET on it does not redirect."""
    api.put("a//b", b"double")
    api.check_error(api.get("a/b"), 404, "not_found")
    resp = api.get("a//b")
    assert resp.status_code == 200
    assert resp.data == b"double"


def test_trailing_slash_is_not_redirected(api: Api) -> None:
    """dir/ and dir do not redirect to each other."""
    api.put("dir", b"file")
    api.check_error(api.get("dir/"), 404, "not_found")
    api.put("dir/", b"folder-ish")
    assert api.get("dir/").data == b"folder-ish"
    assert api.get("dir").data == b"file"


@pytest.mark.parametrize(
    ("path", "ident"),
    [
        ("%C3%A9t%C3%A9.txt", "été.txt"),
        ("%E6%97%A5%E6%9C%AC/%E6%96%87%E6%9B%B8", "日本/文書"),
        ("emoji/%F0%9F%98%80", "emoji/😀"),
        ("space%20and%2Bplus", "space and+plus"),
        ("percent%2541", "percent%41"),
        ("q%3Fmark%23hash", "q?mark#hash"),
    ],
)
def test_percent_encoded_identifiers_round_trip(api: Api, path: str, ident: str) -> None:
    """Percent-encoded UTF-8 is decoded exactly once, on every route."""
    resp = api.put(path, b"payload")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["file_identifier"] == ident
    assert api.get(path).data == b"payload"
    assert api.head(path).status_code == 200
    assert api.metadata(path).get_json()["file_identifier"] == ident
    assert api.patch(path, {"k": "v"}).get_json()["file_identifier"] == ident
    assert api.list_all() == [ident]
    assert api.delete(path).get_json()["file_identifier"] == ident


def test_multipart_identifier_is_taken_literally(api: Api) -> None:
    """A multipart identifier is not URL-decoded: it is reachable percent-encoded."""
    resp = api.upload_file("100%/done", b"x")
    assert resp.status_code == 201
    assert resp.get_json()["file_identifier"] == "100%/done"
    assert api.get("100%25/done").data == b"x"


def test_encoded_slash_names_the_same_identifier(api: Api) -> None:
    """%2F decodes to '/': a%2Fb and a/b are the same object."""
    resp = api.put("a%2Fb", b"slash")
    assert resp.status_code == 201
    assert resp.get_json()["file_identifier"] == "a/b"
    assert api.get("a/b").data == b"slash"
    assert api.get("a%2Fb").data == b"slash"
    assert api.put("a/b", b"again").status_code == 200


def raw_path(api: Api, method: str, path_info: str, **kwargs: Any) -> Any:
    """Send a request whose PATH_INFO holds exactly these (latin-1 carried) bytes.

    Werkzeug's test client decodes %XX as UTF-8 with replacement; a real server hands the
    raw bytes over, which is what this imitates.
    """
    return api.client.open("/placeholder", method=method, headers=api.headers(),
                           environ_overrides={"PATH_INFO": path_info}, **kwargs)


@pytest.mark.parametrize(
    ("method", "prefix"),
    [("PUT", "/data/file/"), ("GET", "/data/file/"), ("DELETE", "/data/file/"),
     ("GET", "/data/metadata/")],
)
@pytest.mark.parametrize("raw", ["\xff", "ok/\xc3", "\xc3\x28", "\xed\xa0\x80"])
def test_invalid_utf8_identifier_is_400(api: Api, method: str, prefix: str, raw: str) -> None:
    """%FF and other bytes that are not UTF-8 get invalid_identifier."""
    resp = raw_path(api, method, prefix + raw, data=b"x")
    api.check_error(resp, 400, "invalid_identifier")
    assert api.list_all() == []
    assert api.stored() == (0, 0)


def test_raw_utf8_path_bytes_work(api: Api) -> None:
    """The same helper with valid UTF-8 bytes reaches the object (control for the above)."""
    resp = raw_path(api, "PUT", "/data/file/" + "é".encode().decode("latin-1"), data=b"x")
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["file_identifier"] == "é"


BAD_PUT_PATHS = {
    "empty": "",
    "leading-slash": "/abs",
    "encoded-leading-slash": "%2Fabs",
    "nul": "a%00b",
    "newline": "a%0Ab",
    "carriage-return": "a%0Db",
    "unit-separator": "a%1Fb",
    "del": "a%7Fb",
    "too-long": "a" * 1025,
    "too-long-utf8": "%C3%A9" * 513,
}


@pytest.mark.parametrize("path", BAD_PUT_PATHS.values(), ids=BAD_PUT_PATHS.keys())
def test_put_invalid_identifier_is_400(api: Api, path: str) -> None:
    """PUT to an identifier that breaks the rules gets invalid_identifier and stores nothing."""
    api.check_error(api.put(path, b"x"), 400, "invalid_identifier")
    assert api.list_all() == []
    assert api.stored() == (0, 0)


@pytest.mark.parametrize("path", ["a" * 1024, "%C3%A9" * 512])
def test_put_identifier_of_1024_bytes_is_accepted(api: Api, path: str) -> None:
    """The identifier limit counts UTF-8 bytes and is inclusive."""
    resp = api.put(path, b"x")
    assert resp.status_code == 201, resp.get_json()
    assert len(resp.get_json()["file_identifier"].encode()) == 1024


# --- the per-user namespace -----------------------------------------------------------------


@pytest.fixture
def alice_secret(api: Api) -> str:
    """alice's object 'private/diary.txt'."""
    resp = api.put("private/diary.txt", b"dear diary", {"X-Meta-Mood": "happy"})
    assert resp.status_code == 201
    return "private/diary.txt"


def test_other_user_gets_404_like_a_missing_object(
    api: Api, bob: Api, alice_secret: str
) -> None:
    """bob's GET/metadata/PATCH/DELETE of alice's object answer exactly like a missing one."""
    for call in (
        lambda p: bob.get(p),
        lambda p: bob.metadata(p),
        lambda p: bob.patch(p, {"mood": "sad"}),
        lambda p: bob.delete(p),
        lambda p: bob.get(p, {"Range": "bytes=0-1"}),
        lambda p: bob.get(p, {"If-None-Match": "*"}),
    ):
        theirs = call(alice_secret)
        missing = call("private/nothing.txt")
        bob.check_error(theirs, 404, "not_found")
        assert theirs.get_json() == missing.get_json()
        assert theirs.headers.get("Content-Type") == missing.headers.get("Content-Type")
    assert bob.head(alice_secret).status_code == bob.head("private/nothing.txt").status_code == 404
    assert bob.head(alice_secret).data == b""
    assert api.get(alice_secret).data == b"dear diary"
    assert api.metadata(alice_secret).get_json()["metadata"] == {"mood": "happy"}


def test_other_user_can_use_the_same_identifier(api: Api, bob: Api, alice_secret: str) -> None:
    """bob's PUT and POST to alice's identifier create his own objects."""
    put = bob.put(alice_secret, b"bob's bytes", {"If-None-Match": "*"})
    assert put.status_code == 201, put.get_json()
    assert bob.get(alice_secret).data == b"bob's bytes"
    assert bob.metadata(alice_secret).get_json()["owner"] == "bob"
    assert bob.metadata(alice_secret).get_json()["metadata"] == {}
    assert api.get(alice_secret).data == b"dear diary"
    assert api.metadata(alice_secret).get_json()["owner"] == "alice"
    assert bob.delete(alice_secret).status_code == 200
    assert api.get(alice_secret).data == b"dear diary"
    post = bob.upload_file(alice_secret, b"bob again")
    assert post.status_code == 201, post.get_json()
    assert api.get(alice_secret).data == b"dear diary"


def test_if_match_with_alices_etag_does_not_reach_her_object(
    api: Api, bob: Api, alice_secret: str
) -> None:
    """bob's conditional PUT sees only his namespace (no object there: 412)."""
    etag = api.metadata(alice_secret).get_json()["etag"]
    bob.check_error(bob.put(alice_secret, b"x", {"If-Match": etag}), 412,
                    "precondition_failed")
    assert api.get(alice_secret).data == b"dear diary"
