"""A full disk: uploads answer 507 and leave nothing behind; the store keeps working."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test and unmounted afterwards; the test fails without it."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.fail("the disk-full test needs mount(8) and umount(8) to make a 16 MiB tmpfs")
    done = _run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount_point)])
    if done.returncode != 0:
        pytest.fail(
            f"cannot mount a 16 MiB tmpfs on {mount_point} (uid {os.geteuid()}; the disk-full"
            f" test must run as root or with CAP_SYS_ADMIN): {done.stderr.strip()}"
        )
    try:
        yield mount_point
    finally:
        if _run(["umount", str(mount_point)]).returncode != 0:
            _run(["umount", "-l", str(mount_point)])


@pytest.fixture
def full_disk_server(small_disk: Path, server_factory: ServerFactory) -> Iterator[MosServer]:
    """A server whose data dir is on the small tmpfs; stopped before the tmpfs is unmounted."""
    srv = server_factory(data_dir=small_disk / "data")
    try:
        yield srv
    finally:
        srv.stop()


# A full disk is the file-system blob store's condition; MongoDB's own disk is MongoDB's.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_full_disk_answers_507_and_leaves_no_temp_file(
    full_disk_server: MosServer, kit: Kit
) -> None:
    """A 32 MiB PUT on a 16 MiB disk: 507 insufficient_storage; afterwards small uploads work."""
    srv = full_disk_server
    auth = srv.login("dave")
    size = 32 * MIB
    resp = srv.raw_request("PUT", "/data/file/too-big.bin", {
        **auth, "Content-Type": "application/octet-stream", "Content-Length": str(size),
        "Connection": "close",
    }, body=kit.payload(size, seed=11))
    assert resp.status == 507, (resp.status, resp.body[:500])
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error", "code"}, body
    assert body["code"] == "insufficient_storage"

    assert kit.wait_until(lambda: srv.temp_files() == [], timeout=5), srv.temp_files()
    assert srv.list_identifiers(auth) == []
    assert srv.blob_files() == []

    small = kit.pattern(4096, seed=12)
    put = requests.put(srv.url("/data/file/small.bin"), data=small, headers=auth,
                       timeout=kit.TIMEOUT)
    assert put.status_code == 201, put.text
    got = requests.get(srv.url("/data/file/small.bin"), headers=auth, timeout=kit.TIMEOUT)
    assert got.status_code == 200
    assert got.content == small
    assert srv.list_identifiers(auth) == ["small.bin"]
