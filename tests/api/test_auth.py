"""Bearer access tokens on the object routes: missing, malformed, forged and expired tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

ErrorCheck = Callable[..., dict[str, Any]]

PROTECTED = [
    ("GET", "/data/user_file"),
    ("POST", "/data/file"),
    ("PUT", "/data/file/x"),
    ("GET", "/data/file/x"),
    ("HEAD", "/data/file/x"),
    ("DELETE", "/data/file/x"),
    ("GET", "/data/metadata/x"),
    ("PATCH", "/data/metadata/x"),
]


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWT built by hand, HMAC-SHA256-signed with key (or unsigned when key is None)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


@pytest.fixture
def secret(client: FlaskClient, data_dir: Path) -> bytes:
    """The signing key the app generated in its data dir."""
    return (data_dir / "jwt_secret").read_bytes().strip()


@pytest.fixture
def user_id(token: str) -> str:
    """alice's id, as the server puts it in `sub`."""
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def good_claims(user_id: str) -> dict[str, Any]:
    """Claims shaped like the server's own access tokens."""
    now = int(time.time())
    return {"sub": user_id, "iat": now, "exp": now + 600, "jti": "j" * 32, "typ": "access"}


def check_401(resp: Any, expect_error: ErrorCheck, code: str = "invalid_token") -> None:
    """401 with the code and a Bearer challenge."""
    expect_error(resp, 401, code)
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")


def list_with(client: FlaskClient, authorization: str) -> Any:
    """GET /data/user_file with this Authorization header."""
    return client.get("/data/user_file", headers={"Authorization": authorization})


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_token_is_401_missing_token(
    client: FlaskClient, expect_error: ErrorCheck, method: str, path: str
) -> None:
    """Every object route needs a token, before it looks at the body."""
    resp = client.open(path, method=method, data=b"x", content_type="text/plain")
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    if method != "HEAD":
        expect_error(resp, 401, "missing_token")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_bad_token_is_401_on_every_route(
    client: FlaskClient, expect_error: ErrorCheck, method: str, path: str
) -> None:
    """A malformed token is refused on every object route."""
    resp = client.open(
        path, method=method, data=b"x", content_type="text/plain",
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    if method != "HEAD":
        expect_error(resp, 401, "invalid_token")


def test_valid_token_is_accepted(client: FlaskClient, token: str) -> None:
    """The token from login works."""
    assert list_with(client, f"Bearer {token}").status_code == 200


def test_hand_made_valid_token_is_accepted(
    client: FlaskClient, secret: bytes, user_id: str
) -> None:
    """A correctly signed token with the server's claims works: the forgeries below differ."""
    token = jwt.encode(good_claims(user_id), secret, algorithm="HS256")
    assert list_with(client, f"Bearer {token}").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJIUzI1NiJ9",
        "Bearer ",
        "Bearer",
        "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==",
        "Token abc",
    ],
)
def test_malformed_authorization_is_401_invalid_token(
    client: FlaskClient, expect_error: ErrorCheck, authorization: str
) -> None:
    """Garbage, an empty token or another scheme gets invalid_token."""
    check_401(list_with(client, authorization), expect_error)


def test_raw_token_without_scheme_is_401(
    client: FlaskClient, expect_error: ErrorCheck, token: str
) -> None:
    """The token alone, without 'Bearer', is not accepted."""
    check_401(list_with(client, token), expect_error)


def test_tampered_payload_is_401(
    client: FlaskClient, expect_error: ErrorCheck, token: str, user_id: str
) -> None:
    """Changing the claims breaks the signature."""
    header, _payload, sig = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = int(claims["exp"]) + 100000
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{sig}"
    check_401(list_with(client, f"Bearer {forged}"), expect_error)


def test_tampered_signature_is_401(
    client: FlaskClient, expect_error: ErrorCheck, token: str
) -> None:
    """A signature with bytes changed is refused."""
    header, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 0xFF
    forged = f"{header}.{payload}.{b64url(bytes(raw))}"
    check_401(list_with(client, f"Bearer {forged}"), expect_error)


def test_token_signed_with_another_key_is_401(
    client: FlaskClient, expect_error: ErrorCheck, user_id: str
) -> None:
    """A token signed with a key other than the server's is refused."""
    forged = jwt.encode(good_claims(user_id), b"k" * 64, algorithm="HS256")
    check_401(list_with(client, f"Bearer {forged}"), expect_error)


def test_expired_token_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str
) -> None:
    """A token past its exp is refused."""
    claims = good_claims(user_id)
    claims["iat"] = int(time.time()) - 7200
    claims["exp"] = int(time.time()) - 60
    expired = jwt.encode(claims, secret, algorithm="HS256")
    check_401(list_with(client, f"Bearer {expired}"), expect_error)


def test_alg_none_is_401(
    client: FlaskClient, expect_error: ErrorCheck, user_id: str
) -> None:
    """An unsigned token (alg: none) is refused."""
    unsigned = hand_made({"alg": "none", "typ": "JWT"}, good_claims(user_id), None)
    check_401(list_with(client, f"Bearer {unsigned}"), expect_error)


@pytest.mark.parametrize("alg", ["None", "NONE"])
def test_alg_none_spelling_variants_are_401(
    client: FlaskClient, expect_error: ErrorCheck, user_id: str, alg: str
) -> None:
    """Other spellings of none are refused too."""
    unsigned = hand_made({"alg": alg, "typ": "JWT"}, good_claims(user_id), None)
    check_401(list_with(client, f"Bearer {unsigned}"), expect_error)


def test_hs512_signed_token_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str
) -> None:
    """Only HS256 is accepted, even with the right key."""
    other_alg = jwt.encode(good_claims(user_id), secret, algorithm="HS512")
    check_401(list_with(client, f"Bearer {other_alg}"), expect_error)


def test_rs256_header_with_hmac_signature_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str
) -> None:
    """RS/HS confusion: an RS256 header over an HMAC signature is refused."""
    confused = hand_made({"alg": "RS256", "typ": "JWT"}, good_claims(user_id), secret)
    check_401(list_with(client, f"Bearer {confused}"), expect_error)


@pytest.mark.parametrize("typ", ["refresh", "Access", "", None])
def test_wrong_token_type_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str, typ: str | None
) -> None:
    """A token whose typ claim is not 'access' is refused."""
    claims = good_claims(user_id)
    claims["typ"] = typ
    check_401(list_with(client, f"Bearer {jwt.encode(claims, secret, 'HS256')}"), expect_error)


@pytest.mark.parametrize("missing", ["jti", "exp", "sub", "typ"])
def test_token_missing_a_claim_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str, missing: str
) -> None:
    """A token without jti, exp, sub or typ is refused."""
    claims = good_claims(user_id)
    del claims[missing]
    check_401(list_with(client, f"Bearer {jwt.encode(claims, secret, 'HS256')}"), expect_error)


def test_token_with_non_string_sub_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, user_id: str
) -> None:
    """A sub that is not a string is refused."""
    forged = hand_made({"alg": "HS256", "typ": "JWT"}, {**good_claims(user_id), "sub": 1}, secret)
    check_401(list_with(client, f"Bearer {forged}"), expect_error)


def test_token_of_unknown_user_is_401(
    client: FlaskClient, expect_error: ErrorCheck, secret: bytes, token: str
) -> None:
    """A correctly signed token for a user that does not exist is refused."""
    ghost = jwt.encode(good_claims("0" * 32), secret, algorithm="HS256")
    check_401(list_with(client, f"Bearer {ghost}"), expect_error)


def test_scheme_is_case_insensitive(client: FlaskClient, token: str) -> None:
    """The auth scheme is case-insensitive (RFC 9110 section 11.1)."""
    assert list_with(client, f"bearer {token}").status_code == 200
    assert list_with(client, f"BEARER {token}").status_code == 200


def remove_user_row(client: FlaskClient, user_id: str) -> None:
    """Delete a user straight from the metadata store, as an admin (or a future route) would."""
    meta = client.application.extensions["mos"].meta
    if hasattr(meta, "database"):
        meta.database.users.delete_one({"_id": user_id})
    else:
        meta._conn().execute("DELETE FROM users WHERE id = ?", (user_id,))


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_token_of_a_user_who_is_gone_is_401_on_every_route(
    client: FlaskClient, auth: dict[str, str], user_id: str, expect_error: ErrorCheck,
    method: str, path: str,
) -> None:
    """A valid signature is not enough: the user must still exist, on every object route."""
    assert client.get("/data/user_file", headers=auth).status_code == 200
    remove_user_row(client, user_id)
    resp = client.open(path, method=method, data=b"x", content_type="text/plain", headers=auth)
    assert resp.status_code == 401
    if method != "HEAD":
        expect_error(resp, 401, "invalid_token")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_gone_user_with_an_invalid_identifier_still_gets_401(
    client: FlaskClient, auth: dict[str, str], user_id: str, method: str
) -> None:
    """401 wins over 400 for a download whose identifier is malformed as well."""
    bad = "/data/file/a%0Ab"  # a newline: invalid_identifier for a user who exists
    assert client.open(bad, method=method, headers=auth).status_code == 400
    remove_user_row(client, user_id)
    assert client.open(bad, method=method, headers=auth).status_code == 401
