"""GET /data/user_file: byte order, prefix, limit, after and next."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from conftest import Api

# Chosen so that byte order differs from case-folded, locale and UTF-16 order:
# '-' < '/' < '0' < 'A' < 'Z' < '_' < 'a' < 'z' < '~' < U+00E9 < U+FFFD < U+1F600.
MIXED = ["b", "B", "a", "A", "a/b", "a-b", "a0", "a_", "Z", "z", "~", "é", "e", "\ufffd",
         "😀", "a/b/c", "ab", "a.b"]


def byte_sorted(ids: list[str]) -> list[str]:
    """Sorted by UTF-8 bytes."""
    return sorted(ids, key=lambda s: s.encode("utf-8"))


def put_all(api: Api, ids: list[str]) -> None:
    """Create an object for each identifier (PUT, percent-encoded)."""
    for ident in ids:
        assert api.put(quote(ident, safe="/"), ident.encode()).status_code == 201, ident


def test_empty_listing(api: Api) -> None:
    """A user without objects gets an empty page and next null."""
    resp = api.list()
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.get_json() == {"file_identifiers": [], "next": None}


def test_listing_is_in_byte_order(api: Api) -> None:
    """Identifiers come back in UTF-8 byte order, case-sensitive, '/' by its byte."""
    put_all(api, MIXED)
    resp = api.list()
    assert resp.get_json() == {"file_identifiers": byte_sorted(MIXED), "next": None}
    ids = resp.get_json()["file_identifiers"]
    assert ids.index("A") < ids.index("Z") < ids.index("a") < ids.index("z") < ids.index("é")
    assert ids.index("a-b") < ids.index("a.b") < ids.index("a/b") < ids.index("a0")
    assert ids.index("\ufffd") < ids.index("😀")


def test_listing_byte_order_holds_across_pages(api: Api) -> None:
    """Paging with limit=1 walks the same byte order."""
    put_all(api, MIXED)
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(MIXED) + 1):
        params: dict[str, str | int] = {"limit": 1}
        if after is not None:
            params["after"] = after
        body = api.list(**params).get_json()
        seen += body["file_identifiers"]
        after = body["next"]
        if after is None:
            break
    assert seen == byte_sorted(MIXED)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a", ["a", "a-b", "a.b", "a/b", "a/b/c", "a0", "a_", "ab"]),
        ("a/", ["a/b", "a/b/c"]),
        ("a/b", ["a/b", "a/b/c"]),
        ("A", ["A"]),
        ("é", ["é"]),
        ("😀", ["😀"]),
        ("q", []),
        ("", byte_sorted(MIXED)),
    ],
)
def test_prefix_filters(api: Api, prefix: str, expected: list[str]) -> None:
    """prefix= keeps identifiers that start with it, byte for byte."""
    put_all(api, MIXED)
    assert api.list_all(prefix=prefix) == expected


def test_prefix_with_percent_encoded_query(api: Api) -> None:
    """A prefix sent percent-encoded in the query is decoded once."""
    put_all(api, ["dir/é1", "dir/é2", "dir/e"])
    resp = api.client.get("/data/user_file?prefix=dir%2F%C3%A9", headers=api.auth)
    assert resp.get_json()["file_identifiers"] == ["dir/é1", "dir/é2"]


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "", "1.5", "10abc"])
def test_invalid_limit_is_400(api: Api, limit: str) -> None:
    """limit outside 1-1000, or not an integer, is 400."""
    api.check_error(api.list(limit=limit), 400)


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_accepted(api: Api, limit: int) -> None:
    """limit=1 and limit=1000 are valid."""
    put_all(api, ["a", "b"])
    body = api.list(limit=limit).get_json()
    assert body["file_identifiers"] == ["a", "b"][:limit]
    assert body["next"] == ("a" if limit == 1 else None)


def test_paginate_25_objects_by_10(api: Api) -> None:
    """Pages of 10, 10 and 5; next is the value to pass as after, null on the last page."""
    ids = [f"obj/{i:02d}" for i in range(25)]
    put_all(api, list(reversed(ids)))
    first = api.list(limit=10).get_json()
    assert first["file_identifiers"] == ids[:10]
    assert first["next"] == ids[9]
    second = api.list(limit=10, after=first["next"]).get_json()
    assert second["file_identifiers"] == ids[10:20]
    assert second["next"] == ids[19]
    third = api.list(limit=10, after=second["next"]).get_json()
    assert third == {"file_identifiers": ids[20:], "next": None}


def test_exact_multiple_of_limit_ends_with_next_null(api: Api) -> None:
    """When the last page is exactly full, its next is null (nothing remains)."""
    ids = [f"k{i:02d}" for i in range(20)]
    put_all(api, ids)
    first = api.list(limit=10).get_json()
    assert first["next"] == ids[9]
    second = api.list(limit=10, after=first["next"]).get_json()
    assert second == {"file_identifiers": ids[10:], "next": None}


def test_default_limit_is_1000(api: Api) -> None:
    """Without limit, up to 1000 come back and next is null when all fit."""
    ids = [f"n{i:02d}" for i in range(30)]
    put_all(api, ids)
    assert api.list().get_json() == {"file_identifiers": ids, "next": None}


def test_pagination_with_prefix(api: Api) -> None:
    """prefix and after combine: pages stay inside the prefix."""
    put_all(api, ["a", "p/1", "p/2", "p/3", "q"])
    first = api.list(prefix="p/", limit=2).get_json()
    assert first == {"file_identifiers": ["p/1", "p/2"], "next": "p/2"}
    second = api.list(prefix="p/", limit=2, after=first["next"]).get_json()
    assert second == {"file_identifiers": ["p/3"], "next": None}


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("b", ["c", "d"]),
        ("bb", ["c", "d"]),
        ("", ["a", "b", "c", "d"]),
        ("A", ["a", "b", "c", "d"]),
        ("a\x00", ["b", "c", "d"]),
        ("d", []),
        ("zzz", []),
        ("é", []),
        ("/", ["a", "b", "c", "d"]),
    ],
)
def test_after_is_strictly_greater_even_for_non_identifiers(
    api: Api, after: str, expected: list[str]
) -> None:
    """after= continues strictly after any string, identifier or not."""
    put_all(api, ["a", "b", "c", "d"])
    assert api.list_all(after=after) == expected


def test_after_below_the_prefix_starts_at_the_prefix(api: Api) -> None:
    """An after smaller than the prefix does not leak identifiers outside it."""
    put_all(api, ["a", "m/1", "m/2", "z"])
    assert api.list_all(prefix="m/", after="b") == ["m/1", "m/2"]
    assert api.list_all(prefix="m/", after="m/1") == ["m/2"]
    assert api.list_all(prefix="m/", after="n") == []


def test_listing_reflects_delete(api: Api) -> None:
    """Deleted identifiers leave the listing."""
    put_all(api, ["a", "b", "c"])
    assert api.delete("b").status_code == 200
    assert api.list_all() == ["a", "c"]


def test_listing_shows_only_the_callers_objects(api: Api, bob: Api) -> None:
    """Each user lists only their own identifiers."""
    put_all(api, ["shared", "alice-only"])
    put_all(bob, ["shared", "bob-only"])
    assert api.list_all() == ["alice-only", "shared"]
    assert bob.list_all() == ["bob-only", "shared"]
    assert bob.list_all(prefix="alice") == []
    assert bob.list_all(after="a") == ["bob-only", "shared"]
