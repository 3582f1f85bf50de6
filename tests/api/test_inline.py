"""Small objects live in their rows, large ones in blob files; clients cannot tell them apart."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from mos.services.objects import INLINE_MAX

if TYPE_CHECKING:
    from conftest import Api

SIZES = {"empty": 0, "at-limit": INLINE_MAX, "one-over": INLINE_MAX + 1}


@pytest.mark.parametrize("how", ["put", "post"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_bytes_come_back_the_same_on_either_side_of_the_threshold(
    api: Api, how: str, size: int
) -> None:
    """Same answers, same bytes, same ranges; only where they are stored differs."""
    data = os.urandom(size)
    resp = (api.put("obj", data) if how == "put"
            else api.upload_file("obj", data, "obj.bin", "application/octet-stream"))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert api.blob_files() == (1 if size > INLINE_MAX else 0)
    got = api.get("obj")
    assert got.status_code == 200 and got.data == data
    assert got.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    if size:
        tail = api.get("obj", {"Range": "bytes=-7"})
        assert tail.status_code == 206 and tail.data == data[-7:]
    assert api.head("obj").headers["Content-Length"] == str(size)
    assert api.client.delete("/data/file/obj", headers=api.headers()).status_code == 200
    assert api.stored() == (0, 0)
