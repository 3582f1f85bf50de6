"""Operations and conventions: health checks, JSON errors everywhere, X-Request-ID."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from flask.testing import FlaskClient

if TYPE_CHECKING:
    from conftest import Api

ErrorCheck = Callable[..., dict[str, Any]]
REQUEST_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:")


def test_healthz(client: FlaskClient) -> None:
    """/healthz answers 200 {"status": "ok"}."""
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"status": "ok"}


def test_readyz(client: FlaskClient) -> None:
    """/readyz answers 200 JSON while both stores answer."""
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"


@pytest.mark.parametrize("path", ["/nope", "/data", "/data/files", "/users", "/users/nope",
                                  "/data/metadata", "/healthz/x"])
def test_unknown_route_is_404_json(client: FlaskClient, expect_error: ErrorCheck,
                                   path: str) -> None:
    """Unknown routes answer API.md's JSON error, not an HTML page."""
    expect_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/healthz"),
        ("POST", "/readyz"),
        ("GET", "/users/register"),
        ("GET", "/users/login"),
        ("PUT", "/data/user_file"),
        ("GET", "/data/file"),
        ("POST", "/data/metadata/x"),
        ("PUT", "/data/metadata/x"),
        ("POST", "/data/file/x"),
        ("PATCH", "/data/file/x"),
    ],
)
def test_wrong_method_is_405_json(client: FlaskClient, expect_error: ErrorCheck, method: str,
                                  path: str) -> None:
    """A known route with the wrong method answers 405 JSON with Allow."""
    resp = client.open(path, method=method)
    expect_error(resp, 405)
    assert resp.headers.get("Allow")


def test_errors_never_leak_html_or_traces(api: Api) -> None:
    """A sample of errors from every layer all have exactly error and code."""
    responses = [
        api.client.get("/nope"),
        api.client.post("/users/register", data=b"{", content_type="application/json"),
        api.client.post("/users/register", data=b"x", content_type="text/plain"),
        api.client.get("/data/user_file"),
        api.get("missing"),
        api.list(limit="0"),
        api.put("/bad", b"x"),
        api.patch("missing", {"k": 1}),
        api.client.delete("/healthz"),
    ]
    for resp in responses:
        assert resp.status_code >= 400
        assert resp.mimetype == "application/json"
        body = resp.get_json()
        assert set(body) == {"error", "code"}, body
        text = resp.get_data(as_text=True)
        assert "Traceback" not in text and "<html" not in text.lower()


@pytest.mark.parametrize(
    "given",
    ["abc", "a", "A-Za-z0-9._-:", "req:2026-11-24T13.56_17", "x" * 128,
     "550e8400-e29b-41d4-a716-446655440000"],
)
@pytest.mark.parametrize("path", ["/healthz", "/nope", "/data/user_file"])
def test_valid_request_id_is_echoed(client: FlaskClient, given: str, path: str) -> None:
    """A valid X-Request-ID comes back unchanged, on success and on error."""
    resp = client.get(path, headers={"X-Request-ID": given})
    assert resp.headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given",
    ["x" * 129, "has space", "semi;colon", "slash/id", "quote\"", "tab\tid", "é", "a,b",
     "new\\nline", ""],
)
@pytest.mark.parametrize("path", ["/healthz", "/nope", "/data/user_file"])
def test_invalid_request_id_is_replaced(client: FlaskClient, given: str, path: str) -> None:
    """An invalid X-Request-ID is replaced by a new, valid one."""
    resp = client.get(path, headers={"X-Request-ID": given})
    new = resp.headers["X-Request-ID"]
    assert new != given
    assert 1 <= len(new) <= 128
    assert set(new) <= REQUEST_ID_CHARS


def test_request_id_is_generated_when_absent(client: FlaskClient) -> None:
    """Without X-Request-ID each response gets its own new one."""
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first and second and first != second
    assert set(first) <= REQUEST_ID_CHARS


def test_request_id_on_uploads_and_downloads(api: Api) -> None:
    """Streaming routes carry X-Request-ID too."""
    rid = {"X-Request-ID": "upload-1"}
    assert api.put("f", b"x", rid).headers["X-Request-ID"] == "upload-1"
    assert api.get("f", rid).headers["X-Request-ID"] == "upload-1"
    assert api.head("f", rid).headers["X-Request-ID"] == "upload-1"
    post = api.client.post("/data/file", data=api.multipart_body([api.Part("file", b"x", "x")]),
                           headers=api.headers({**rid, "Content-Type":
                                                "multipart/form-data; boundary="
                                                "----mos-test-boundary-7MA4YWxkTrZu0gW"}))
    assert post.status_code == 201
    assert post.headers["X-Request-ID"] == "upload-1"


def test_unexpected_failure_is_500_json_without_trace(
    app: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception answers 500 internal_error JSON, never a stack trace."""

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["mos"].objects, "list", boom)
    resp = api.list()
    body = api.check_error(resp, 500, "internal_error")
    assert "secret internal detail" not in body["error"]
    assert "Traceback" not in resp.get_data(as_text=True)
    assert resp.headers.get("X-Request-ID")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_readyz_is_503_when_the_stores_are_gone(
    app: Any, client: FlaskClient, expect_error: ErrorCheck
) -> None:
    """/readyz answers 503 not_ready with Retry-After once the data dir has been removed."""
    assert client.get("/readyz").status_code == 200
    shutil.rmtree(app.extensions["mos"].settings.data_dir)
    resp = client.get("/readyz")
    expect_error(resp, 503, "not_ready")
    assert resp.headers.get("Retry-After")
    assert client.get("/healthz").status_code == 200
