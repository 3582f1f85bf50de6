"""Request bodies read straight from Gunicorn's socket: keep-alive, pipelining, broken clients."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import pytest

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory


@dataclass
class Answer:
    """One HTTP/1.1 response read off a raw connection."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def read_response(reader: BinaryIO) -> Answer:
    """The next response from a buffered reader of the connection (one reader per connection:
    a second buffer could swallow the start of the next pipelined response)."""
    status = int(reader.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, reader.read(int(headers.get("content-length", "0"))))


def server_answered(server: MosServer, request_line: str) -> bool:
    """Whether the access log has a line for this request (written once it was answered)."""
    return f'"{request_line}' in server.log_tail(200)


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
    with server.connect() as sock, sock.makefile("rb") as reader:
        sock.sendall(wire)
        for name, data in (("p1", first), ("p2", second)):
            put = read_response(reader)
            assert put.status == 201, put.body
            assert put.json()["file_identifier"] == name
            assert put.json()["sha256"] == hashlib.sha256(data).hexdigest()
        got = read_response(reader)
        assert got.status == 200 and got.body == second


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
    # The server must have seen the end of the connection and answered before we look.
    assert kit.wait_until(lambda: server_answered(server, "PUT /data/file/half "), 10)
    assert server.temp_files() == []
    assert server.blob_files() == []
    assert "half" not in server.list_identifiers(auth)


def test_client_silent_mid_body_gets_400_and_stores_nothing(
    server_factory: ServerFactory, kit: Kit
) -> None:
    """Half a body, then silence: after MOS_CLIENT_TIMEOUT the upload fails and closes."""
    srv = server_factory(workers=1, env={"MOS_CLIENT_TIMEOUT": "1"})
    auth = srv.login("alice")
    size = 4 * 1024 * 1024
    with srv.connect(timeout=15) as sock, sock.makefile("rb") as reader:
        sock.sendall(kit_head(srv, "PUT", "/data/file/stalled",
                              {**auth, "Content-Length": str(size)}))
        sock.sendall(kit.pattern(size // 2, 4))
        started = time.monotonic()
        answer = read_response(reader)
        assert answer.status == 400
        assert answer.json()["code"] == "incomplete_body"
        assert time.monotonic() - started < 10
        assert sock.recv(1) == b"", "the connection stays open after a broken body"
    assert srv.temp_files() == [] and srv.blob_files() == []
    assert "stalled" not in srv.list_identifiers(auth)
