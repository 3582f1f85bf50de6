"""MongoDB deployments: two API nodes on one database, and an outage the service survives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from mongo_server import SecantusServer

if TYPE_CHECKING:
    from conftest import Kit, MosServer, ServerFactory

pytestmark = pytest.mark.e2e

SECRET = "two-nodes-share-this-secret-of-32+bytes"
# The service's server-selection timeout is 3 s; nothing may wait much longer than that.
OUTAGE_ANSWER_WITHIN = 8.0


@pytest.mark.parametrize("backend", ["mongo"], indirect=True)
def test_two_nodes_share_users_tokens_and_objects(server_factory: ServerFactory) -> None:
    """A token from one node works on the other; an object moves through both."""
    env = {"MOS_JWT_SECRET": SECRET}
    a, b = server_factory(env=env), server_factory(env=env)
    assert a.data_dir != b.data_dir
    auth = a.login("dora")
    up = requests.put(a.url("/data/file/shared/x.txt"), data=b"from node a", timeout=30,
                      headers={**auth, "Content-Type": "text/plain", "X-Meta-Colour": "red"})
    assert up.status_code == 201, up.text
    assert b.list_identifiers(auth) == ["shared/x.txt"]
    got = requests.get(b.url("/data/file/shared/x.txt"), headers=auth, timeout=30)
    assert (got.status_code, got.content) == (200, b"from node a")
    patched = requests.patch(b.url("/data/metadata/shared/x.txt"), json={"size": "L"},
                             headers=auth, timeout=30)
    assert patched.status_code == 200 and patched.json()["metadata"] == {
        "colour": "red", "size": "L"}
    seen = requests.get(a.url("/data/metadata/shared/x.txt"), headers=auth, timeout=30).json()
    assert seen["metadata"] == {"colour": "red", "size": "L"}
    assert requests.delete(b.url("/data/file/shared/x.txt"), headers=auth,
                           timeout=30).status_code == 200
    assert requests.get(a.url("/data/file/shared/x.txt"), headers=auth,
                        timeout=30).status_code == 404
    # A login on node b gives a token node a accepts.
    token_b = requests.post(b.url("/users/login"), timeout=30,
                            json={"username": "dora", "password": "correct horse battery"})
    assert token_b.status_code == 200
    header = {"Authorization": f"Bearer {token_b.json()['access_token']}"}
    assert requests.get(a.url("/data/user_file"), headers=header, timeout=30).status_code == 200


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[SecantusServer]:
    """A MongoDB stand-in of this test's own, so it can be stopped and started again."""
    server = SecantusServer(tmp_path / "outage-db").start()
    try:
        yield server
    finally:
        server.stop()


# The test brings its own MongoDB (it must stop it, which it cannot do to a shared or real
# one), so the backend fixture is pinned to the one that starts none.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_mongodb_outage_answers_503_fast_then_recovers(
    own_mongo: SecantusServer, server_factory: ServerFactory, kit: Kit
) -> None:
    """MongoDB stops: 503 with Retry-After within seconds, healthz still up; it comes back:
    the same process serves again, and nothing written during the outage is half there."""
    url = own_mongo.uri + "mos_outage"
    srv: MosServer = server_factory(env={"MOS_METADATA_URL": url, "MOS_BLOB_STORE": "gridfs"})
    auth = srv.login("olga")
    before = requests.put(srv.url("/data/file/kept"), data=b"before the outage",
                          headers=auth, timeout=30)
    assert before.status_code == 201
    pid = srv.pid

    own_mongo.stop()
    calls = {
        "download": lambda: requests.get(srv.url("/data/file/kept"), headers=auth, timeout=30),
        "upload": lambda: requests.put(srv.url("/data/file/during"), data=b"x" * 100_000,
                                       headers=auth, timeout=30),
        "list": lambda: requests.get(srv.url("/data/user_file"), headers=auth, timeout=30),
        "login": lambda: requests.post(srv.url("/users/login"), timeout=30,
                                       json={"username": "olga",
                                             "password": "correct horse battery"}),
        "readyz": lambda: requests.get(srv.url("/readyz"), timeout=30),
    }
    for name, call in calls.items():
        started = time.monotonic()
        resp = call()
        took = time.monotonic() - started
        assert resp.status_code == 503, (name, resp.status_code, resp.text)
        assert resp.json()["code"] == ("not_ready" if name == "readyz" else "unavailable")
        assert resp.headers.get("Retry-After"), name
        assert took < OUTAGE_ANSWER_WITHIN, f"{name} took {took:.1f} s"
    assert requests.get(srv.url("/healthz"), timeout=10).status_code == 200

    own_mongo.start()

    def serving() -> bool:
        # Each worker's driver finds MongoDB again on its own, and the first request a worker
        # gets may still be answered 503 (with Retry-After): wait until several in a row,
        # on fresh connections (so over both workers), are served.
        if requests.get(srv.url("/readyz"), timeout=30).status_code != 200:
            return False
        return all(requests.get(srv.url("/data/file/kept"), headers=auth,
                                timeout=30).status_code == 200 for _ in range(6))

    assert kit.wait_until(serving, timeout=60), "no recovery after MongoDB came back"
    assert srv.pid == pid and srv.proc is not None and srv.proc.poll() is None
    got = requests.get(srv.url("/data/file/kept"), headers=auth, timeout=30)
    assert (got.status_code, got.content) == (200, b"before the outage")
    assert srv.list_identifiers(auth) == ["kept"]
    after = requests.put(srv.url("/data/file/after"), data=b"after", headers=auth, timeout=30)
    assert after.status_code == 201
    report = srv.fsck("--min-age", "0")
    assert report.returncode == 0, report.stdout + report.stderr
