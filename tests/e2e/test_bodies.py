"""Request bodies read straight from Gunicorn's socket: keep-alive, pipelining, broken clients."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory


def read_response(sock: socket.socket, method: str = "PUT") -> http.client.HTTPResponse:
    """The next response on a raw keep-alive connection (its body read)."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    resp.body = resp.read()  # type: ignore[attr-defined]
    return resp


@pytest.mark.parametrize("size", [100, 3 * 1024 * 1024 + 123], ids=["small", "over-3-mib"])
def test_pipelined_requests_after_a_body_are_answered(
    server: MosServer, auth: dict[str, str], kit: Kit, size: int
) -> None:
    """PUT, PUT and GET sent in one write: each body ends where it should, the next request
    starts right after it, and the bytes come back as sent."""
    first, second = kit.pattern(size, 1), kit.pattern(size + 1, 2)
    wire = b""
    for name, data in (("p1", first), ("p2", second)):
        head = {**auth, "Content-Length": str(len(data))}
        wire += kit_head(server, "PUT", f"/data/file/{name}", head) + data
    wire += kit_head(server, "GET", "/data/file/p2", auth)
    with server.connect() as sock:
        sock.sendall(wire)
        for name, data in (("p1", first), ("p2", second)):
            put = read_response(sock)
            assert put.status == 201, put.body  # type: ignore[attr-defined]
            answer = json.loads(put.body)  # type: ignore[attr-defined]
            assert answer["file_identifier"] == name
            assert answer["sha256"] == hashlib.sha256(data).hexdigest()
        got = read_response(sock, "GET")
        assert got.status == 200 and got.body == second  # type: ignore[attr-defined]


def kit_head(server: MosServer, method: str, path: str, headers: dict[str, str]) -> bytes:
    """Request line and headers for a raw socket."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_client_that_closes_mid_body_stores_nothing(
    server: MosServer, auth: dict[str, str], kit: Kit
) -> None:
    """Half a body, then the connection closes: no object, no blob, no temp file."""
    size = 8 * 1024 * 1024
    with server.connect() as sock:
        sock.sendall(kit_head(server, "PUT", "/data/file/half",
                              {**auth, "Content-Length": str(size)}))
        sock.sendall(kit.pattern(size // 2, 3))
    assert kit.wait_until(lambda: not server.temp_files(), 10), server.temp_files()
    assert server.blob_files() == []
    assert "half" not in server.list_identifiers(auth)


def test_client_silent_mid_body_gets_400_and_stores_nothing(
    server_factory: ServerFactory, kit: Kit
) -> None:
    """Half a body, then silence: after MOS_CLIENT_TIMEOUT the upload fails and closes."""
    srv = server_factory(workers=1, env={"MOS_CLIENT_TIMEOUT": "1"})
    auth = srv.login("alice")
    size = 4 * 1024 * 1024
    with srv.connect(timeout=15) as sock:
        sock.sendall(kit_head(srv, "PUT", "/data/file/stalled",
                              {**auth, "Content-Length": str(size)}))
        sock.sendall(kit.pattern(size // 2, 4))
        started = time.monotonic()
        answer = read_response(sock)
        assert answer.status == 400
        assert json.loads(answer.body)["code"] == "incomplete_body"  # type: ignore[attr-defined]
        assert time.monotonic() - started < 10
        assert sock.recv(1) == b"", "the connection stays open after a broken body"
    assert srv.temp_files() == [] and srv.blob_files() == []
    assert "stalled" not in srv.list_identifiers(auth)
