"""TokenService: strict verification of HS256 access tokens."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from mos.errors import Unauthorized
from mos.services.tokens import TokenService, load_or_create_secret

SECRET = b"s" * 32


def claims(**over: object) -> dict[str, object]:
    """A full, valid claim set."""
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "u1", "iat": now, "exp": now + 60, "jti": "j", "typ": "access"
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip() -> None:
    """A token it issued verifies and names the user."""
    svc = TokenService(SECRET, ttl=60)
    got = svc.verify_access(svc.issue_access("user-1"))
    assert got["sub"] == "user-1" and got["typ"] == "access"
    assert got["exp"] - got["iat"] == 60 and got["jti"]


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), b"x" * 32, algorithm="HS256"),  # wrong key
        jwt.encode(claims(), SECRET, algorithm="HS512"),  # other algorithm
        jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"),
        jwt.encode(claims(typ="refresh"), SECRET, algorithm="HS256"),
        jwt.encode(claims(jti=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(typ=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(), None, algorithm="none"),
        "not.a.token",
        "",
    ],
)
def test_rejects(token: str) -> None:
    """Tampered, expired, wrong-type, incomplete and unsigned tokens are refused."""
    with pytest.raises(Unauthorized):
        TokenService(SECRET, ttl=60).verify_access(token)


def test_tampered_payload() -> None:
    """Changing the payload breaks the signature."""
    svc = TokenService(SECRET, ttl=60)
    head, _payload, sig = svc.issue_access("alice").split(".")
    forged = jwt.encode(claims(sub="bob"), b"k" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(Unauthorized):
        svc.verify_access(f"{head}.{forged}.{sig}")


def test_secret_created_once_with_mode_0600(tmp_path: Path) -> None:
    """The generated key is kept, private, and stable across calls."""
    path = tmp_path / "jwt_secret"
    first = load_or_create_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["jwt_secret"]


def test_cached_token_still_expires() -> None:
    """A token verified once (and cached) is refused once its exp has passed."""
    # PyJWT checks exp against the real clock, so the token is made for the real window.
    now = [time.time()]
    token = TokenService(SECRET, ttl=60).issue_access("u1")
    svc = TokenService(SECRET, ttl=60, clock=lambda: now[0])
    assert svc.verify_access(token)["sub"] == "u1"
    now[0] += 61
    with pytest.raises(Unauthorized):
        svc.verify_access(token)


def test_bad_tokens_are_not_cached() -> None:
    """A refused token is refused again (errors are never remembered as success)."""
    svc = TokenService(SECRET, ttl=60)
    forged = jwt.encode(claims(), b"x" * 32, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            svc.verify_access(forged)
