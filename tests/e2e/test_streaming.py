"""A 1 GiB object goes up (raw PUT, multipart POST) and down in constant server memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer, Payload

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BIG = 1024 * MIB
MEMORY_BUDGET = 100 * MIB


def warm_up(server: MosServer, auth: dict[str, str], kit: Kit) -> None:
    """Run every upload and download path a few times, so lazy imports don't count as growth."""
    small = kit.pattern(3 * MIB, seed=99)
    for i in range(6):
        ident = f"warm/{i}"
        put = requests.put(
            server.url(f"/data/file/{ident}"), data=small, headers=auth, timeout=kit.TIMEOUT
        )
        assert put.status_code == 201, put.text
        body, ctype = kit.multipart(2 * MIB, seed=98, identifier=f"warm/m{i}")
        post = requests.post(
            server.url("/data/file"), data=body, headers={**auth, "Content-Type": ctype},
            timeout=kit.TIMEOUT,
        )
        assert post.status_code == 201, post.text
        assert server.download(ident, auth)[:2] == (200, len(small))


def upload(
    server: MosServer, auth: dict[str, str], kit: Kit, method: str, ident: str
) -> tuple[requests.Response, Payload]:
    """Stream BIG bytes to the server by raw PUT or by multipart POST."""
    if method == "raw_put":
        body = kit.payload(BIG, seed=1)
        resp = requests.put(
            server.url(f"/data/file/{ident}"), data=body,
            headers={**auth, "Content-Type": "application/octet-stream"}, timeout=kit.TIMEOUT,
        )
    else:
        body, ctype = kit.multipart(BIG, seed=2, identifier=ident)
        resp = requests.post(
            server.url("/data/file"), data=body, headers={**auth, "Content-Type": ctype},
            timeout=kit.TIMEOUT,
        )
    return resp, body


@pytest.mark.parametrize("method", ["raw_put", "multipart_post"])
def test_one_gib_round_trip_in_constant_memory(
    server: MosServer, auth: dict[str, str], kit: Kit, method: str
) -> None:
    """1 GiB up and down: same SHA-256 both ways; server RSS grows by less than 100 MiB."""
    warm_up(server, auth, kit)
    ident = f"big/{method}.bin"
    with server.sample_rss() as rss:
        resp, body = upload(server, auth, kit, method, ident)
        assert resp.status_code == 201, resp.text
        answer = resp.json()
        assert answer["file_identifier"] == ident
        assert answer["size"] == BIG
        assert answer["sha256"] == body.sha256
        status, size, digest = server.download(ident, auth)
    assert status == 200
    assert size == BIG
    assert digest == body.sha256
    assert rss.samples > 10, "the RSS sampler barely ran"
    assert rss.growth < MEMORY_BUDGET, (
        f"server RSS grew by {rss.growth / MIB:.1f} MiB (from {rss.baseline / MIB:.1f} MiB"
        f" to {rss.peak / MIB:.1f} MiB) while moving {BIG / MIB:.0f} MiB"
    )
