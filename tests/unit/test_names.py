"""Naming rules of API.md."""

from __future__ import annotations

import pytest

from mos.errors import BadRequest, InvalidIdentifier, InvalidMetadata
from mos.services.names import check_identifier, check_metadata, check_password, check_username


@pytest.mark.parametrize("name", ["abc", "a.b-c_d", "X" * 64, "007"])
def test_good_usernames(name: str) -> None:
    """Allowed characters and lengths pass."""
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["ab", "X" * 65, "a b", "al/ice", "é" * 4, "", "a\n"])
def test_bad_usernames(name: str) -> None:
    """Everything else is invalid_username."""
    with pytest.raises(BadRequest) as err:
        check_username(name)
    assert err.value.code == "invalid_username"


def test_passwords() -> None:
    """8 to 1024 characters."""
    check_password("x" * 8)
    check_password("x" * 1024)
    for bad in ("x" * 7, "x" * 1025):
        with pytest.raises(BadRequest):
            check_password(bad)


@pytest.mark.parametrize(
    "ident", ["a", "photos/2026/a.jpg", "a//b", "..", "x/../y", "dir/", "é/ü", "a" * 1024]
)
def test_good_identifiers(ident: str) -> None:
    """Slashes, dots and non-ASCII are fine; nothing is normalised."""
    assert check_identifier(ident) == ident


@pytest.mark.parametrize(
    "ident", ["", "/abs", "a\x00b", "tab\there", "del\x7f", "é" * 513, "a" * 1025, "\ud800"]
)
def test_bad_identifiers(ident: str) -> None:
    """Empty, leading '/', control characters, too long, not UTF-8."""
    with pytest.raises(InvalidIdentifier):
        check_identifier(ident)


def test_metadata_limits() -> None:
    """Field count, sizes and duplicates are enforced."""
    assert check_metadata([("a", "1"), ("b", "")]) == {"a": "1", "b": ""}
    check_metadata([(f"f{i}", "v") for i in range(100)])
    check_metadata([("n" * 128, "v" * 8192)])
    bad_cases = [
        [(f"f{i}", "v") for i in range(101)],
        [("a", "1"), ("a", "2")],
        [("", "v")],
        [("n" * 129, "v")],
        [("bad\nname", "v")],
        [("v", "x" * 8193)],
        [(f"f{i}", "x" * 8000) for i in range(9)],
    ]
    for pairs in bad_cases:
        with pytest.raises(InvalidMetadata):
            check_metadata(pairs)
