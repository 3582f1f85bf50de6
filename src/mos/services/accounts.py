"""Accounts: registration and password checks with argon2id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mos.errors import Conflict, InvalidCredentials
from mos.services.clock import utcnow
from mos.services.names import USERNAME, check_password, check_username, is_utf8
from mos.stores.base import MetadataStore, UsernameTaken, UserRecord


class AccountService:
    """Register users and check their passwords."""

    def __init__(
        self,
        meta: MetadataStore,
        hasher: PasswordHasher,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.meta = meta
        self.hasher = hasher
        self.clock = clock
        # Verifying against this when the user is unknown makes both failures cost the same.
        self._dummy_hash = hasher.hash("not a real password, only a timing decoy")

    def register(self, username: str, password: str) -> UserRecord:
        """Create a user; the name is unique case-insensitively."""
        check_username(username)
        check_password(password)
        password_hash = self.hasher.hash(password)
        try:
            return self.meta.create_user(username, password_hash, self.clock())
        except UsernameTaken:
            raise Conflict("That username is taken.", code="username_taken") from None

    def authenticate(self, username: str, password: str) -> UserRecord:
        """Return the user if the password is right; one error for every failure."""
        possible = USERNAME.fullmatch(username) is not None
        user = self.meta.get_user_by_name(username) if possible else None
        if not is_utf8(password):
            password = ""  # still verified (and fails) so that it costs the usual time
        try:
            self.hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            raise InvalidCredentials() from None
        if user is None:
            raise InvalidCredentials()
        return user

    def get(self, user_id: str) -> UserRecord | None:
        """The user with this id, if it still exists."""
        return self.meta.get_user(user_id)
