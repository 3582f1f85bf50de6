"""Shared fixtures: settings on a temp data dir, the app, and a logged-in client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from flask.testing import FlaskClient

from mongo_server import REAL_MONGODB_VARIABLE, SecantusServer, with_database
from mos.app import create_app
from mos.config import Settings, load_settings

# Cheap argon2id parameters keep the suite fast; production defaults are tested in unit tests.
FAST_HASH = {"MOS_ARGON2_TIME_COST": "1", "MOS_ARGON2_MEMORY_KIB": "256",
             "MOS_ARGON2_PARALLELISM": "1"}


BACKENDS = ["sqlite", "mongo"]


@pytest.fixture(scope="session")
def mongo_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB for the whole run: MOS_TEST_MONGODB_URI, else SecantusDB on a free port.

    Nothing falls back to SQLite or a mock: if no server can run, the tests that need one fail
    and say why.
    """
    real = os.environ.get(REAL_MONGODB_VARIABLE)
    if real:
        yield real
        return
    server = SecantusServer(tmp_path_factory.mktemp("secantus") / "db")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the MongoDB stand-in: {exc}", pytrace=False)
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def mongo_url(mongo_server_uri: str) -> Iterator[str]:
    """A URL of a fresh database, dropped after the test."""
    name = f"mos_test_{uuid.uuid4().hex[:12]}"
    yield with_database(mongo_server_uri, name)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_server_uri, serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(name)
    finally:
        client.close()


def backend_env(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """The MOS_* variables that select a backend: SQLite + disk, or MongoDB + GridFS."""
    if backend == "sqlite":
        return {}
    url = request.getfixturevalue("mongo_url")
    return {"MOS_METADATA_URL": url, "MOS_BLOB_STORE": "gridfs"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> Settings:
    """Settings on a fresh data dir, on each backend."""
    env = {**FAST_HASH, "MOS_DATA_DIR": str(tmp_path / "data"), **backend_env(request, backend)}
    return load_settings(env)


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    """The Flask app on the embedded default."""
    application = create_app(settings)
    yield application
    application.extensions["mos"].close()


@pytest.fixture
def client(app: Any) -> FlaskClient:
    """An anonymous test client."""
    return app.test_client()


def login(client: FlaskClient, username: str = "alice", password: str = "correct horse") -> str:
    """Register (if needed) and log in; return the access token."""
    client.post("/users/register", json={"username": username, "password": password})
    resp = client.post("/users/login", json={"username": username, "password": password})
    assert resp.status_code == 200, resp.json
    return str(resp.json["access_token"])


@pytest.fixture
def token(client: FlaskClient) -> str:
    """alice's access token."""
    return login(client)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    """The Authorization header for alice."""
    return {"Authorization": f"Bearer {token}"}
