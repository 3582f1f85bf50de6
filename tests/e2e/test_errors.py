"""Error shapes and request ids through the real server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer

pytestmark = pytest.mark.e2e


def test_unknown_route_is_json_404_with_request_id(server: MosServer, kit: Kit) -> None:
    """An unknown route answers 404 {"error", "code"} as JSON, with a fresh X-Request-ID."""
    resp = requests.get(server.url("/no/such/route"), timeout=kit.TIMEOUT)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error", "code"}, body
    assert body["code"] == "not_found"
    assert isinstance(body["error"], str) and body["error"]
    assert resp.headers.get("X-Request-ID"), dict(resp.headers)


def test_client_request_id_is_echoed(server: MosServer, kit: Kit) -> None:
    """A client's X-Request-ID comes back unchanged, on success and on error."""
    for path, status in (("/healthz", 200), ("/no/such/route", 404)):
        resp = requests.get(
            server.url(path), headers={"X-Request-ID": "abc-123"}, timeout=kit.TIMEOUT
        )
        assert resp.status_code == status
        assert resp.headers.get("X-Request-ID") == "abc-123"
