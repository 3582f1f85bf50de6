"""POST /users/register and POST /users/login against API.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

ErrorCheck = Callable[..., dict[str, Any]]
PASSWORD = "correct horse"


def register(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """POST /users/register with a JSON body."""
    return client.post("/users/register", json={"username": username, "password": password})


def test_register_answers_201_with_the_seed_body(client: FlaskClient) -> None:
    """A new user gets 201 and the seed's message and username."""
    resp = register(client, "alice")
    assert resp.status_code == 201
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"message": "User created", "username": "alice"}


@pytest.mark.parametrize("username", ["abc", "A" * 64, "Al.ice_-9", "..."])
def test_register_accepts_usernames_within_the_rules(client: FlaskClient, username: str) -> None:
    """3-64 characters of A-Z a-z 0-9 _ . - are accepted."""
    resp = register(client, username)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["username"] == username


@pytest.mark.parametrize("second", ["alice", "ALICE", "Alice"])
def test_register_taken_username_is_409(
    client: FlaskClient, expect_error: ErrorCheck, second: str
) -> None:
    """A username is unique case-insensitively."""
    assert register(client, "alice").status_code == 201
    expect_error(register(client, second, "another password"), 409, "username_taken")


@pytest.mark.parametrize(
    "username", ["ab", "", "a" * 65, "al ice", "al/ice", "alicé", "al@ce", "bob\n"]
)
def test_register_invalid_username_is_400(
    client: FlaskClient, expect_error: ErrorCheck, username: str
) -> None:
    """Too short, too long or bad characters get invalid_username."""
    expect_error(register(client, username), 400, "invalid_username")


@pytest.mark.parametrize("length", [8, 1024])
def test_register_accepts_passwords_of_8_to_1024_chars(client: FlaskClient, length: int) -> None:
    """The password length bounds are inclusive."""
    assert register(client, "alice", "p" * length).status_code == 201


@pytest.mark.parametrize("length", [0, 7, 1025])
def test_register_invalid_password_is_400(
    client: FlaskClient, expect_error: ErrorCheck, length: int
) -> None:
    """Passwords outside 8-1024 characters get invalid_password."""
    expect_error(register(client, "alice", "p" * length), 400, "invalid_password")


def test_register_refused_user_can_not_log_in(client: FlaskClient) -> None:
    """A refused registration creates nothing."""
    register(client, "alice", "short")
    resp = client.post("/users/login", json={"username": "alice", "password": "short"})
    assert resp.status_code == 401


@pytest.mark.parametrize("path", ["/users/register", "/users/login"])
@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "alice", "password": ',
        b"not json at all",
        b"",
        b'{"password": "correct horse"}',
        b'{"username": "alice"}',
        b"{}",
        b'{"username": 12345, "password": "correct horse"}',
        b'{"username": ["alice"], "password": "correct horse"}',
        b'{"username": null, "password": "correct horse"}',
        b'{"username": "alice", "password": 12345678}',
        b'{"username": "alice", "password": ["correct horse"]}',
        b'{"username": "alice", "password": null}',
        b'{"username": {"x": 1}, "password": "correct horse"}',
        b'["alice", "correct horse"]',
        b'"alice"',
        b"null",
    ],
)
def test_users_bad_json_is_400_invalid_json(
    client: FlaskClient, expect_error: ErrorCheck, path: str, body: bytes
) -> None:
    """Malformed JSON, missing fields and wrong types get invalid_json."""
    resp = client.post(path, data=body, content_type="application/json")
    expect_error(resp, 400, "invalid_json")


@pytest.mark.parametrize("path", ["/users/register", "/users/login"])
def test_users_text_plain_is_415(client: FlaskClient, expect_error: ErrorCheck, path: str) -> None:
    """A JSON text declared as text/plain is refused."""
    body = json.dumps({"username": "alice", "password": PASSWORD})
    resp = client.post(path, data=body, content_type="text/plain")
    expect_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/users/register", "/users/login"])
def test_users_form_body_is_415(client: FlaskClient, expect_error: ErrorCheck, path: str) -> None:
    """An HTML form body is refused."""
    resp = client.post(path, data={"username": "alice", "password": PASSWORD})
    expect_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/users/register", "/users/login"])
def test_users_body_without_content_type_is_415(
    client: FlaskClient, expect_error: ErrorCheck, path: str
) -> None:
    """A body that declares no media type is refused."""
    body = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    resp = client.post(path, data=body)
    expect_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/users/register", "/users/login"])
def test_users_json_body_over_1_mib_is_413(
    client: FlaskClient, expect_error: ErrorCheck, path: str
) -> None:
    """A JSON body larger than 1 MiB gets too_large."""
    body = {"username": "alice", "password": PASSWORD, "padding": "x" * (1024 * 1024)}
    expect_error(client.post(path, json=body), 413, "too_large")
    assert client.post(
        "/users/login", json={"username": "alice", "password": PASSWORD}
    ).status_code == 401


def test_login_answers_the_token_document(client: FlaskClient) -> None:
    """Login answers jwt_token == access_token, Bearer, 3600 s."""
    register(client, "alice")
    resp = client.post("/users/login", json={"username": "alice", "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert isinstance(body["access_token"], str) and body["access_token"].count(".") == 2
    assert body["jwt_token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    listing = client.get(
        "/data/user_file", headers={"Authorization": f"Bearer {body['jwt_token']}"}
    )
    assert listing.status_code == 200


@pytest.mark.parametrize("given", ["alice", "ALICE", "aLiCe"])
def test_login_username_is_case_insensitive(client: FlaskClient, given: str) -> None:
    """A user registered as Alice logs in under any case, as the same user."""
    register(client, "Alice")
    resp = client.post("/users/login", json={"username": given, "password": PASSWORD})
    assert resp.status_code == 200, resp.get_json()
    auth = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
    assert client.put("/data/file/mine", data=b"x", headers=auth).status_code == 201
    other = client.post("/users/login", json={"username": "Alice", "password": PASSWORD})
    auth2 = {"Authorization": f"Bearer {other.get_json()['access_token']}"}
    assert client.get("/data/user_file", headers=auth2).get_json()["file_identifiers"] == [
        "mine"
    ]


def test_login_wrong_password_and_unknown_user_answer_alike(
    client: FlaskClient, expect_error: ErrorCheck
) -> None:
    """Wrong password and unknown user get the same 401 invalid_credentials body."""
    register(client, "alice")
    wrong = client.post("/users/login", json={"username": "alice", "password": "wrong password"})
    unknown = client.post("/users/login", json={"username": "nobody", "password": PASSWORD})
    body_wrong = expect_error(wrong, 401, "invalid_credentials")
    body_unknown = expect_error(unknown, 401, "invalid_credentials")
    assert body_wrong == body_unknown
    assert wrong.get_data() == unknown.get_data()


def test_login_password_is_case_sensitive(client: FlaskClient, expect_error: ErrorCheck) -> None:
    """Only the username ignores case, not the password."""
    register(client, "alice")
    resp = client.post("/users/login", json={"username": "alice", "password": PASSWORD.upper()})
    expect_error(resp, 401, "invalid_credentials")
