"""Access tokens: HS256 JWTs with the algorithm pinned and every claim required."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from mos.errors import Unauthorized

ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 4096
ACCESS = "access"
_REQUIRED = ["sub", "iat", "exp", "jti", "typ"]


class TokenService:
    """Issue and verify access tokens."""

    def __init__(self, secret: bytes, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self.ttl = ttl
        self.clock = clock
        # A client sends the same token with every request: check its signature once.
        # Only valid tokens are kept (an exception is not cached), and expiry is checked on
        # every use; what may change later about a user is checked per request elsewhere.
        self._verified = functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)

    def issue_access(self, user_id: str) -> str:
        """A signed access token for the user, valid for ttl seconds."""
        now = int(self.clock())
        claims = {"sub": user_id, "iat": now, "exp": now + self.ttl,
                  "jti": uuid.uuid4().hex, "typ": ACCESS}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify_access(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; Unauthorized for anything else."""
        claims = dict(self._verified(token))
        if claims["exp"] <= self.clock():
            raise Unauthorized()
        return claims

    def _verify(self, token: str) -> tuple[tuple[str, Any], ...]:
        """Full verification; the claims as an immutable tuple, fit for the cache."""
        try:
            # Only HS256 is accepted: alg "none", HS512 or RS256 (key confusion) all fail here.
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM],
                options={"require": _REQUIRED, "verify_iat": True},
            )
        except jwt.PyJWTError:
            raise Unauthorized() from None
        if claims.get("typ") != ACCESS or not isinstance(claims.get("sub"), str):
            raise Unauthorized()
        return tuple(claims.items())


def load_or_create_secret(path: Path) -> bytes:
    """Read the signing key kept in the data dir, creating it (mode 0600) the first time."""
    if not path.exists():
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_hex(32).encode())
                f.flush()
                os.fsync(f.fileno())
            # link() never replaces: when workers start at once, the first key wins whole.
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            temp.unlink()
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the key must survive a crash, or every token would die with it
        finally:
            os.close(dir_fd)
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise ValueError(f"{path} holds a key shorter than 32 bytes")
    return secret
