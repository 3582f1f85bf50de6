"""Concurrent creates of one identifier, and replaces racing with downloads."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Kit, MosServer

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def test_concurrent_creates_of_one_identifier(
    server: MosServer, auth: dict[str, str], kit: Kit
) -> None:
    """20 simultaneous POSTs of one identifier: one 201, nineteen 409s, no orphan left."""
    ident = "race/one.bin"
    contents = [kit.pattern(256 * 1024, seed=1000 + i) for i in range(20)]
    barrier = threading.Barrier(len(contents), timeout=30)
    results: list[tuple[int, dict[str, Any]] | BaseException | None] = [None] * len(contents)

    def post(i: int) -> None:
        try:
            barrier.wait()
            resp = requests.post(
                server.url("/data/file"), headers=auth, data={"file_identifier": ident},
                files={"file": (f"v{i}.bin", contents[i], "application/octet-stream")},
                timeout=kit.TIMEOUT,
            )
            results[i] = (resp.status_code, resp.json())
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(contents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "an upload thread hung"
    errors = [r for r in results if not isinstance(r, tuple)]
    assert not errors, f"requests failed: {errors}"
    answers = [r for r in results if isinstance(r, tuple)]
    winners = [i for i, (status, _) in enumerate(answers) if status == 201]
    assert len(winners) == 1, f"statuses: {[status for status, _ in answers]}"
    for i, (status, body) in enumerate(answers):
        if i != winners[0]:
            assert status == 409, (status, body)
            assert body["code"] == "identifier_exists", body
            assert set(body) == {"error", "code"}, body

    expected = contents[winners[0]]
    assert answers[winners[0]][1]["sha256"] == hashlib.sha256(expected).hexdigest()
    got = requests.get(server.url(f"/data/file/{ident}"), headers=auth, timeout=kit.TIMEOUT)
    assert got.status_code == 200
    assert got.content == expected, "the stored bytes are not the winner's"

    blobs = server.blob_files()
    assert len(blobs) == 1, f"expected exactly one blob, found {blobs}"
    assert server.temp_files() == [], f"temp files left: {server.temp_files()}"
    check = server.fsck("--min-age", "0")
    assert check.returncode == 0, check.stdout + check.stderr


def test_replace_while_downloading_gives_whole_versions(
    server: MosServer, auth: dict[str, str], kit: Kit
) -> None:
    """PUTs alternating two versions race with downloads: each download is one whole version."""
    ident = "race/replaced.bin"
    versions = [kit.pattern(4 * MIB, seed=1), kit.pattern(5 * MIB, seed=2)]
    known = {hashlib.sha256(v).hexdigest(): len(v) for v in versions}
    url = server.url(f"/data/file/{ident}")
    first = requests.put(url, data=versions[0], headers=auth, timeout=kit.TIMEOUT)
    assert first.status_code == 201, first.text

    duration = 3.0
    max_puts = 200
    max_gets = 500
    stop = threading.Event()
    put_statuses: list[int] = []
    downloads: list[tuple[int, int, str]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer() -> None:
        try:
            with requests.Session() as s:
                for n in range(max_puts):
                    if stop.is_set():
                        return
                    resp = s.put(url, data=versions[(n + 1) % 2], headers=auth,
                                 timeout=kit.TIMEOUT)
                    put_statuses.append(resp.status_code)
        except BaseException as exc:
            failures.append(exc)

    def reader() -> None:
        try:
            with requests.Session() as s:
                for _ in range(max_gets):
                    if stop.is_set():
                        return
                    result = server.download(ident, auth, session=s)
                    with lock:
                        downloads.append(result)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert not failures, f"client errors: {failures}"

    assert len(put_statuses) >= 2, f"only {len(put_statuses)} replaces ran"
    assert set(put_statuses) == {200}, f"PUT statuses: {put_statuses}"
    assert len(downloads) >= 3, f"only {len(downloads)} downloads ran"
    bad = [d for d in downloads if d[0] != 200 or known.get(d[2]) != d[1]]
    assert not bad, (
        f"{len(bad)} of {len(downloads)} downloads were not one whole version"
        f" (status, length): {[(d[0], d[1]) for d in bad[:10]]}"
    )
