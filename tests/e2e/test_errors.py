"""Error shapes and request ids through the real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory

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


def test_silent_clients_time_out_and_others_are_served(
    server_factory: ServerFactory, kit: Kit
) -> None:
    """Half-sent requests holding every thread get 408 after MOS_CLIENT_TIMEOUT; others go on."""
    srv = server_factory(workers=1, env={"MOS_CLIENT_TIMEOUT": "1"})
    stalled = []
    for _ in range(10):  # more than the worker's 8 threads
        sock = srv.connect(timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        stalled.append(sock)
    try:
        started = time.monotonic()
        ok = requests.get(srv.url("/healthz"), timeout=(5, 10))
        assert ok.status_code == 200
        assert time.monotonic() - started < 8
        answer = stalled[0].recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"code": "request_timeout"' in answer
    finally:
        for sock in stalled:
            sock.close()


def test_underscore_header_is_refused_not_dropped(server: MosServer, auth: dict[str, str]) -> None:
    """X-Meta-my_key would be dropped silently by the server; it is refused with JSON instead."""
    resp = requests.put(server.url("/data/file/u"), data=b"x", timeout=10,
                        headers={**auth, "X-Meta-my_key": "v"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json()["code"] == "bad_request"
    assert requests.get(server.url("/data/file/u"), headers=auth, timeout=10).status_code == 404


def test_chunked_json_over_the_limit_is_413(server: MosServer) -> None:
    """A JSON body without Content-Length is measured as it comes: 413, not a parse error."""
    def body() -> Iterator[bytes]:
        yield b'{"username": "big", "password": "password1", "pad": "'
        for _ in range(2):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    resp = requests.post(server.url("/users/register"), data=body(), timeout=30,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["code"] == "too_large"
