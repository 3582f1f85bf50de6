"""AccountService: argon2id hashes and indistinguishable login failures."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

from mos.errors import Conflict, InvalidCredentials
from mos.services.accounts import AccountService
from mos.stores.sqlite import SQLiteMetadataStore


class CountingHasher(PasswordHasher):
    """A real argon2id hasher that counts verifications."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        """Count, then verify for real."""
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def accounts(meta: SQLiteMetadataStore) -> AccountService:
    """Accounts with cheap but real argon2id."""
    return AccountService(meta, CountingHasher(time_cost=1, memory_cost=256, parallelism=1))


def test_register_stores_argon2id(accounts: AccountService, meta: SQLiteMetadataStore) -> None:
    """The stored hash is argon2id, never the password."""
    user = accounts.register("Alice", "correct horse")
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert meta.get_user_by_name("alice") == user


def test_duplicate_any_case(accounts: AccountService) -> None:
    """Names are unique case-insensitively."""
    accounts.register("alice", "password1")
    with pytest.raises(Conflict) as err:
        accounts.register("ALICE", "password2")
    assert err.value.code == "username_taken"


def test_login_case_insensitive(accounts: AccountService) -> None:
    """Login finds the user whatever the case."""
    user = accounts.register("Alice", "password1")
    assert accounts.authenticate("aLiCe", "password1") == user


def test_unknown_user_costs_a_hash_like_a_wrong_password(accounts: AccountService) -> None:
    """Both failures run one argon2 verification and raise the same error."""
    accounts.register("alice", "password1")
    hasher = accounts.hasher
    assert isinstance(hasher, CountingHasher)
    before = hasher.verified
    with pytest.raises(InvalidCredentials) as wrong:
        accounts.authenticate("alice", "wrong password")
    with pytest.raises(InvalidCredentials) as unknown:
        accounts.authenticate("nobody", "wrong password")
    assert hasher.verified - before == 2
    assert (wrong.value.status, wrong.value.code, wrong.value.message) == (
        unknown.value.status, unknown.value.code, unknown.value.message)


def test_default_parameters_are_memory_hard() -> None:
    """The production defaults are argon2id with 64 MiB of memory."""
    from mos.config import Settings

    s = Settings()
    hasher = PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib,
                            parallelism=s.argon2_parallelism, type=Type.ID)
    h = hasher.hash("password1")
    assert h.startswith("$argon2id$") and "m=65536" in h
    with pytest.raises(VerificationError):
        hasher.verify(h, "password2")
