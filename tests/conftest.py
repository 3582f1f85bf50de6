"""Shared fixtures: settings on a temp data dir, the app, and a logged-in client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from mos.app import create_app
from mos.config import Settings, load_settings

# Cheap argon2id parameters keep the suite fast; production defaults are tested in unit tests.
FAST_HASH = {"MOS_ARGON2_TIME_COST": "1", "MOS_ARGON2_MEMORY_KIB": "256",
             "MOS_ARGON2_PARALLELISM": "1"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data dir."""
    return load_settings({**FAST_HASH, "MOS_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    """The Flask app on the embedded default."""
    application = create_app(settings)
    yield application
    application.extensions["mos"].meta.close()


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
