"""Helpers for the API tests: error checks, multipart bodies, a second user, a small-limit app."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mos.app import create_app
from mos.config import Settings
from mos.stores.base import is_inline_id

# Same cheap argon2id parameters as tests/conftest.py (not importable: both are "conftest").
FAST_HASH = {"MOS_ARGON2_TIME_COST": "1", "MOS_ARGON2_MEMORY_KIB": "256",
             "MOS_ARGON2_PARALLELISM": "1"}
PASSWORD = "correct horse"
BOUNDARY = "----mos-test-boundary-7MA4YWxkTrZu0gW"
SMALL_LIMIT = 1000


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body; a filename makes it a file part."""

    name: str
    value: bytes | str
    filename: str | None = None
    content_type: str | None = None


def check_error(resp: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert API.md's error shape: the status, JSON, exactly `error` and `code`."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/json", resp.headers
    body = resp.get_json()
    assert isinstance(body, dict)
    assert set(body) == {"error", "code"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and re.fullmatch(r"[a-z][a-z0-9_]*", body["code"])
    if code is not None:
        assert body["code"] == code, body
    return body


def multipart_body(parts: Sequence[Part], boundary: str = BOUNDARY) -> bytes:
    """Encode parts as multipart/form-data in the given order."""
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if part.content_type is not None:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"\r\n"
        out += part.value.encode() if isinstance(part.value, str) else part.value
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def log_in(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Register (if needed) and log in; return the Authorization header."""
    client.post("/users/register", json={"username": username, "password": password})
    resp = client.post("/users/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}


def count_files(root: Path) -> int:
    """Regular files anywhere under root."""
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


class Api:
    """A test client bound to one user's token, with shortcuts for the object routes."""

    Part = Part
    check_error = staticmethod(check_error)
    multipart_body = staticmethod(multipart_body)

    def __init__(self, client: FlaskClient, auth: dict[str, str], data_dir: Path) -> None:
        self.client = client
        self.auth = auth
        self.data_dir = data_dir

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The Authorization header plus extra headers."""
        return {**self.auth, **(extra or {})}

    def upload(self, parts: Sequence[Part], boundary: str = BOUNDARY) -> TestResponse:
        """POST /data/file with a hand-built multipart body."""
        return self.client.post(
            "/data/file",
            data=multipart_body(parts, boundary),
            headers=self.headers(
                {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            ),
        )

    def upload_file(
        self,
        identifier: str | None,
        data: bytes,
        filename: str = "f.bin",
        content_type: str | None = "application/octet-stream",
        fields: dict[str, str] | None = None,
    ) -> TestResponse:
        """Multipart upload of one file with optional identifier and metadata fields."""
        parts = [Part(k, v) for k, v in (fields or {}).items()]
        if identifier is not None:
            parts.insert(0, Part("file_identifier", identifier))
        parts.append(Part("file", data, filename, content_type))
        return self.upload(parts)

    def put(
        self, path: str, data: bytes = b"data", headers: dict[str, str] | None = None
    ) -> TestResponse:
        """PUT /data/file/<path> (path already percent-encoded as needed)."""
        return self.client.put(f"/data/file/{path}", data=data, headers=self.headers(headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> TestResponse:
        """GET /data/file/<path>."""
        return self.client.get(f"/data/file/{path}", headers=self.headers(headers))

    def head(self, path: str, headers: dict[str, str] | None = None) -> TestResponse:
        """HEAD /data/file/<path>."""
        return self.client.head(f"/data/file/{path}", headers=self.headers(headers))

    def delete(self, path: str) -> TestResponse:
        """DELETE /data/file/<path>."""
        return self.client.delete(f"/data/file/{path}", headers=self.headers())

    def metadata(self, path: str) -> TestResponse:
        """GET /data/metadata/<path>."""
        return self.client.get(f"/data/metadata/{path}", headers=self.headers())

    def patch(
        self, path: str, body: Any, content_type: str = "application/merge-patch+json"
    ) -> TestResponse:
        """PATCH /data/metadata/<path> with a JSON body (or raw bytes/str as given)."""
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.patch(
            f"/data/metadata/{path}", data=data,
            headers=self.headers({"Content-Type": content_type}),
        )

    def list(self, **params: Any) -> TestResponse:
        """GET /data/user_file with query parameters."""
        return self.client.get("/data/user_file", query_string=params, headers=self.headers())

    def list_all(self, **params: Any) -> list[str]:
        """The identifiers of one page, asserting a 200."""
        resp = self.list(**params)
        assert resp.status_code == 200, resp.get_json()
        return list(resp.get_json()["file_identifiers"])

    def stored(self) -> tuple[int, int]:
        """(stored copies of bytes, temp files of unfinished writes), whatever the stores are.

        A copy is a blob, or a small object's bytes held in its metadata row.
        """
        services = self.client.application.extensions["mos"]
        rows = services.meta.iter_blob_refs()
        inline = [ref for ref in rows if is_inline_id(ref[0])]
        return len(services.blobs.iter_blobs()) + len(inline), len(services.blobs.iter_temp())

    def blob_files(self) -> int:
        """Blobs in the blob store alone (objects over INLINE_MAX, and orphans)."""
        return len(self.client.application.extensions["mos"].blobs.iter_blobs())


@pytest.fixture
def expect_error() -> Callable[..., dict[str, Any]]:
    """check_error, for test modules (they cannot import this conftest)."""
    return check_error


@pytest.fixture
def data_dir(settings: Settings) -> Path:
    """The app's data directory."""
    return settings.data_dir


@pytest.fixture
def api(client: FlaskClient, auth: dict[str, str], data_dir: Path) -> Api:
    """alice's shortcuts."""
    return Api(client, auth, data_dir)


@pytest.fixture
def bob(client: FlaskClient, data_dir: Path) -> Api:
    """bob's shortcuts on the same app."""
    return Api(client, log_in(client, "bob"), data_dir)


@pytest.fixture
def make_api(client: FlaskClient, data_dir: Path) -> Callable[[str], Api]:
    """Shortcuts for any (new) user on the same app."""
    return lambda username: Api(client, log_in(client, username), data_dir)


@pytest.fixture
def small_api(settings: Settings) -> Iterator[Api]:
    """alice on an app whose MOS_MAX_OBJECT_SIZE is SMALL_LIMIT bytes, on each backend."""
    small = settings.with_overrides(max_object_size=SMALL_LIMIT)
    application = create_app(small)
    client = application.test_client()
    yield Api(client, log_in(client, "alice"), small.data_dir)
    application.extensions["mos"].close()


# Where small bodies live: in their rows (MOS_INLINE_MAX, the default) or, like every large
# one, in blob files. Modules that set BOTH_BYTE_HOMES = True run each test in both ways, so
# the blob bookkeeping of failed and replaced uploads stays covered for small bodies too.
BYTE_HOMES = ["inline", "blob-files"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize bytes_home for the modules that ask for both."""
    if getattr(metafunc.module, "BOTH_BYTE_HOMES", False) and "bytes_home" in metafunc.fixturenames:
        metafunc.parametrize("bytes_home", BYTE_HOMES, indirect=True)


@pytest.fixture
def bytes_home(request: pytest.FixtureRequest) -> str:
    """'inline' unless the module runs both."""
    return str(getattr(request, "param", "inline"))


@pytest.fixture
def settings(settings: Settings, bytes_home: str) -> Settings:
    """The settings of tests/conftest.py, with MOS_INLINE_MAX=0 for the blob-files run."""
    return settings.with_overrides(inline_max=0) if bytes_home == "blob-files" else settings
