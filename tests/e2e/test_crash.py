"""A server killed mid-upload, and bodies cut short: nothing half-written becomes visible."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def test_sigkill_mid_upload_leaves_only_a_temp_file_fsck_removes(
    server_factory: ServerFactory, kit: Kit
) -> None:
    """SIGKILL during a streaming PUT: no object after restart; fsck reports, then repairs."""
    srv = server_factory()
    auth = srv.login("carol")
    ident = "crash/big.bin"
    total = 256 * MIB
    sock = srv.open_request("PUT", f"/data/file/{ident}", {
        **auth, "Content-Type": "application/octet-stream", "Content-Length": str(total),
    })
    try:
        body = iter(kit.payload(total, seed=7))
        # GridFS (pymongo) buffers up to 32 MiB of chunks before it writes: send until bytes
        # are in the blob store, at most 64 MiB of the 256.
        arrived = False
        for sent in range(1, 65):
            sock.sendall(next(body))
            if sent % 4 == 0 and kit.wait_until(lambda: srv.temp_bytes() >= MIB, timeout=1):
                arrived = True
                break
        assert arrived, f"no temp file grew under {srv.temp_dir}: {srv.temp_files()}"
        srv.kill()
    finally:
        sock.close()

    leftovers = srv.temp_files()
    assert len(leftovers) == 1, leftovers
    leftover = leftovers[0]

    srv.start()  # same data dir, after the crash
    auth = srv.login("carol")
    assert ident not in srv.list_identifiers(auth)
    got = requests.get(srv.url(f"/data/file/{ident}"), headers=auth, timeout=kit.TIMEOUT)
    assert got.status_code == 404
    assert got.json()["code"] == "not_found"

    report = srv.fsck("--min-age", "0")
    assert report.returncode == 1, report.stdout + report.stderr
    assert leftover in report.stdout, report.stdout

    repair = srv.fsck("--repair", "--min-age", "0")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    again = srv.fsck("--min-age", "0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert srv.temp_files() == []


@pytest.mark.parametrize("ending", ["shutdown_write", "close"])
def test_truncated_body_leaves_nothing(
    server: MosServer, auth: dict[str, str], kit: Kit, ending: str
) -> None:
    """Content-Length 1000000 but 1000 bytes sent, then the client hangs up: no object, no temp."""
    ident = f"truncated/{ending}.bin"
    sock = server.open_request("PUT", f"/data/file/{ident}", {
        **auth, "Content-Type": "application/octet-stream", "Content-Length": "1000000",
    })
    try:
        sock.sendall(kit.pattern(1000, seed=3))
        if ending == "shutdown_write":
            sock.shutdown(socket.SHUT_WR)
            # Whatever the server answers, read it (bounded) before hanging up for good.
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                for _ in range(100):
                    if not sock.recv(65536):
                        break
    finally:
        sock.close()

    def gone() -> bool:
        if server.temp_files():
            return False
        resp = requests.get(server.url(f"/data/file/{ident}"), headers=auth, timeout=kit.TIMEOUT)
        return resp.status_code == 404

    assert kit.wait_until(gone, timeout=10), (
        f"temp files: {server.temp_files()}; listed: {server.list_identifiers(auth)}"
    )
    assert ident not in server.list_identifiers(auth)
