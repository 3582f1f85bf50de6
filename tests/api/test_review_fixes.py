"""Behaviour fixed after review: content types, surrogates, weak tags, empty suffix ranges."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient

if TYPE_CHECKING:
    from conftest import Api


@pytest.mark.parametrize(
    "content_type", ["text/pl\u20acin", "a/b\x0b", "x" * 300 + "/y", "nonsense", "text/plain;\x7f"]
)
def test_multipart_part_content_type_must_be_a_media_type(
    api: Api, expect_error: Any, content_type: str
) -> None:
    """A part Content-Type that could not be sent back as a header is 400, nothing stored."""
    resp = api.upload_file("ct", b"data", "f.txt", content_type)
    expect_error(resp, 400, "invalid_content_type")
    assert api.stored() == (0, 0)
    assert api.list_all() == []


def test_put_content_type_must_be_a_media_type(api: Api, expect_error: Any) -> None:
    """PUT checks its Content-Type before it reads the body."""
    resp = api.put("ct", b"data", {"Content-Type": "x" * 300 + "/y"})
    expect_error(resp, 400, "invalid_content_type")
    assert api.stored() == (0, 0)


def test_media_type_with_parameters_is_kept(api: Api) -> None:
    """Parameters survive: text/plain; charset=utf-8 comes back as sent."""
    assert api.put("p", b"x", {"Content-Type": "text/plain; charset=utf-8"}).status_code == 201
    assert api.get("p").headers["Content-Type"] == "text/plain; charset=utf-8"


def test_file_part_without_filename_is_the_file(api: Api) -> None:
    """curl -F 'file=<x' sends no filename=: the part is still the object's bytes."""
    body = b"z" * 20_000  # larger than a metadata field may be
    resp = api.upload([api.Part("file_identifier", "nofname/x.txt"), api.Part("file", body)])
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["size"] == len(body)
    got = api.get("nofname/x.txt")
    assert got.data == body
    assert got.headers["Content-Disposition"] == "attachment; filename=x.txt"


def raw_json(client: FlaskClient, path: str, text: str) -> Any:
    """POST a JSON text exactly as given (json.dumps would escape lone surrogates the same)."""
    return client.post(path, data=text.encode("utf-8"), content_type="application/json")


def test_lone_surrogate_password_is_400_on_register(client: FlaskClient, expect_error: Any) -> None:
    """JSON may carry \\ud800, UTF-8 cannot: a clear 400, not a 500."""
    text = json.dumps({"username": "surro", "password": "passw\ud800rd12"})
    expect_error(raw_json(client, "/users/register", text), 400, "invalid_password")


@pytest.mark.parametrize(
    "body",
    [{"username": "al\ud800ice", "password": "whatever123"},
     {"username": "alice", "password": "passw\ud800rd12"}],
)
def test_lone_surrogates_on_login_are_invalid_credentials(
    api: Api, client: FlaskClient, expect_error: Any, body: dict[str, str]
) -> None:
    """A login with unencodable text is the ordinary 401."""
    expect_error(raw_json(client, "/users/login", json.dumps(body)), 401, "invalid_credentials")


def test_weak_if_none_match_on_put_matches(api: Api, expect_error: Any) -> None:
    """If-None-Match compares weakly: W/"<etag>" of the current version stops the PUT."""
    etag = api.put("w", b"one").get_json()["etag"]
    expect_error(api.put("w", b"two", {"If-None-Match": f"W/{etag}"}), 412, "precondition_failed")
    assert api.get("w").data == b"one"


def test_empty_suffix_range_is_416(api: Api, expect_error: Any) -> None:
    """bytes=-0 selects no byte at all."""
    api.put("r", b"0123456789")
    resp = api.get("r", {"Range": "bytes=-0"})
    expect_error(resp, 416, "range_not_satisfiable")
    assert resp.headers["Content-Range"] == "bytes */10"


def test_json_body_of_exactly_the_limit_is_read(client: FlaskClient) -> None:
    """A body of exactly 1 MiB is within the limit; one byte more is 413."""
    limit = 1024 * 1024
    base = json.dumps({"username": "limit", "password": "password1", "pad": ""})
    exact = base[:-2] + "x" * (limit - len(base)) + '"}'
    assert len(exact) == limit
    assert raw_json(client, "/users/register", exact).status_code == 201
    over = base[:-2] + "x" * (limit - len(base) + 1) + '"}'
    assert raw_json(client, "/users/register", over).status_code == 413
