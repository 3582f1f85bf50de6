"""The MetadataStore contract, run on every implementation."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from mos.errors import Conflict, Unavailable
from mos.stores.base import (
    INLINE_PREFIX,
    MetadataStore,
    ObjectExists,
    ObjectRecord,
    UsernameTaken,
    is_inline_id,
)
from mos.stores.sqlite import SQLiteMetadataStore

NOW = datetime(2026, 11, 24, 13, 56, 17, tzinfo=UTC)


@pytest.fixture
def o(meta: MetadataStore) -> dict[str, str]:
    """Users u, u1, u2, v and other, by name to id: objects belong to real users."""
    return {n: meta.create_user(n, "hash", NOW).id for n in ("u", "u1", "u2", "v", "other")}


def inline_refs(meta: MetadataStore) -> list[tuple[str, str, str]]:
    """The refs of rows that hold their bytes."""
    return [ref for ref in meta.iter_blob_refs() if is_inline_id(ref[0])]


def file_refs(meta: MetadataStore) -> list[tuple[str, str, str]]:
    """The refs of rows whose bytes are in the blob store."""
    return [ref for ref in meta.iter_blob_refs() if not is_inline_id(ref[0])]

LATER = datetime(2026, 11, 25, tzinfo=UTC)


def record(owner: str, identifier: str, blob_id: str = "a" * 32, **kw: object) -> ObjectRecord:
    """An object row with sensible defaults."""
    values: dict[str, object] = {
        "owner_id": owner, "identifier": identifier, "blob_id": blob_id, "filename": "f.txt",
        "content_type": "text/plain", "size": 3, "sha256": "0" * 64, "created_at": NOW,
        "updated_at": NOW, "metadata": {"k": "v"},
    }
    values.update(kw)
    return ObjectRecord(**values)  # type: ignore[arg-type]


def test_users_unique_case_insensitively(meta: MetadataStore) -> None:
    """A name that differs only in case is taken; lookups ignore case."""
    alice = meta.create_user("Alice", "hash", NOW)
    with pytest.raises(UsernameTaken):
        meta.create_user("aLICE", "hash2", NOW)
    found = meta.get_user_by_name("ALICE")
    assert found == alice
    assert meta.get_user(alice.id) == alice
    assert meta.get_user("nope") is None
    assert meta.get_user_by_name("bob") is None


def test_insert_get_and_duplicate(meta: MetadataStore, o: dict[str, str]) -> None:
    """(owner, identifier) is unique per owner, not globally."""
    rec = record(o["u1"], "photos/a.jpg")
    meta.insert_object(rec)
    assert meta.get_object(o["u1"], "photos/a.jpg") == rec
    with pytest.raises(ObjectExists):
        meta.insert_object(record(o["u1"], "photos/a.jpg", "b" * 32))
    meta.insert_object(record(o["u2"], "photos/a.jpg", "c" * 32))
    assert meta.get_object(o["u2"], "photos/a.jpg").blob_id == "c" * 32  # type: ignore[union-attr]
    assert meta.get_object(o["u1"], "missing") is None


def test_swap_is_compare_and_set(meta: MetadataStore, o: dict[str, str]) -> None:
    """A swap succeeds only against the version it read."""
    first = record(o["u"], "x")
    meta.insert_object(first)
    new = replace(record(o["u"], "x", "b" * 32, size=9), revision=2)
    assert meta.swap_object(new, expected=first)
    assert meta.get_object(o["u"], "x") == new
    assert not meta.swap_object(replace(new, revision=3), expected=first)
    gone = record(o["u"], "gone")
    assert not meta.swap_object(replace(gone, revision=2), expected=gone)


def test_swap_refuses_a_recreated_row(meta: MetadataStore, o: dict[str, str]) -> None:
    """Deleted and created again, a row starts at revision 1 anew but is another version."""
    old = record(o["u"], "x", "1" * 32)
    meta.insert_object(old)
    meta.delete_object(o["u"], "x")
    meta.insert_object(record(o["u"], "x", "2" * 32))
    assert not meta.swap_object(replace(record(o["u"], "x", "3" * 32), revision=2), expected=old)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    assert not meta.set_metadata(o["u"], "x", {"stale": "yes"}, later, expected=old)
    current = meta.get_object(o["u"], "x")
    assert current is not None and current.blob_id == "2" * 32 and current.metadata == {"k": "v"}


def test_set_metadata_bumps_revision(meta: MetadataStore, o: dict[str, str]) -> None:
    """Metadata changes are compare-and-set too."""
    first = record(o["u"], "x")
    meta.insert_object(first)
    later = datetime(2026, 11, 25, tzinfo=UTC)
    assert meta.set_metadata(o["u"], "x", {"a": "b"}, later, expected=first)
    got = meta.get_object(o["u"], "x")
    assert got is not None
    assert got.metadata == {"a": "b"} and got.revision == 2 and got.updated_at == later
    assert not meta.set_metadata(o["u"], "x", {"c": "d"}, later, expected=first)


def test_delete_returns_row_once(meta: MetadataStore, o: dict[str, str]) -> None:
    """Of concurrent deleters exactly one gets the row."""
    meta.insert_object(record(o["u"], "x"))
    results: list[ObjectRecord | None] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(meta.delete_object(o["u"], "x"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert meta.get_object(o["u"], "x") is None


def race_delete(meta: MetadataStore, owner: str, with_metadata: bool) -> None:
    """Delete rows while a writer keeps replacing them (and, if asked, changing their
    metadata); the delete must return the last version written, whole."""
    for round_ in range(10):
        ident = f"x{round_}"
        first = record(owner, ident, blob_id=f"{0:032x}")
        meta.insert_object(first)
        written = [first]
        failures: list[BaseException] = []
        start = threading.Barrier(2, timeout=30)
        done = threading.Event()

        def writer(ident: str = ident, written: list[ObjectRecord] = written,
                   start: threading.Barrier = start, done: threading.Event = done,
                   failures: list[BaseException] = failures) -> None:
            try:
                start.wait()
                for n in range(1, 1000):
                    if done.is_set():
                        return
                    current = written[-1]
                    if with_metadata and n % 2 == 0:
                        # The same bytes, other metadata: only the revision tells them apart.
                        new = replace(current, metadata={"n": str(n)}, updated_at=LATER,
                                      revision=current.revision + 1)
                        if not meta.set_metadata(owner, ident, new.metadata, LATER, current):
                            return  # deleted
                    else:
                        new = replace(current, blob_id=f"{n:032x}", revision=current.revision + 1)
                        if not meta.swap_object(new, expected=current):
                            return
                    written.append(new)
            except BaseException as exc:  # re-raised below: a thread's error must fail the test
                failures.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        start.wait()
        # A few writes first, so that the delete meets a row that is changing.
        while len(written) < 3 + round_ % 5 and thread.is_alive():
            time.sleep(0.0005)
        try:
            gone = meta.delete_object(owner, ident)
            refused = False
        except Conflict:  # a store may give up on a row that changes all the time...
            refused = True
        done.set()
        thread.join()
        if failures:
            raise failures[0]
        if refused:  # ...but then it removed nothing, and it can delete once the writer stops
            assert meta.get_object(owner, ident) == written[-1], f"round {round_}"
            gone = meta.delete_object(owner, ident)
        assert gone == written[-1], f"round {round_}"
        assert meta.get_object(owner, ident) is None


def test_delete_returns_the_version_it_removed(meta: MetadataStore, o: dict[str, str]) -> None:
    """A delete racing with replacements returns the last version swapped in, no other."""
    race_delete(meta, o["u"], with_metadata=False)


def test_delete_racing_metadata_changes(meta: MetadataStore, o: dict[str, str]) -> None:
    """The same with metadata changes in between, which keep the blob and raise the revision
    (SecantusDB's find_one_and_delete, used before, failed this: not atomic there)."""
    race_delete(meta, o["u"], with_metadata=True)


def test_concurrent_inserts_one_wins(meta: MetadataStore, o: dict[str, str]) -> None:
    """The unique key makes exactly one of many creators win."""
    outcomes: list[bool] = []
    barrier = threading.Barrier(10)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            meta.insert_object(record(o["u"], "same", f"{i:032x}"))
            outcomes.append(True)
        except ObjectExists:
            outcomes.append(False)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 1


def test_list_byte_order_prefix_after_limit(meta: MetadataStore, o: dict[str, str]) -> None:
    """Listing is in UTF-8 byte order, bounded by prefix, after and limit."""
    names = ["b", "a", "A", "a/b", "a/c", "ab", "é", "z", "\uffff", "a\U0010ffff"]
    for i, n in enumerate(names):
        meta.insert_object(record(o["u"], n, f"{i:032x}"))
    meta.insert_object(record(o["other"], "a0", "f" * 32))
    everything = meta.list_identifiers(o["u"], "", None, 100)
    assert everything == sorted(names, key=lambda s: s.encode())
    assert meta.list_identifiers(o["u"], "a", None, 100) == ["a", "a/b", "a/c", "ab", "a\U0010ffff"]
    assert meta.list_identifiers(o["u"], "a/", None, 100) == ["a/b", "a/c"]
    assert meta.list_identifiers(o["u"], "", "a/b", 2) == ["a/c", "ab"]
    assert meta.list_identifiers(o["u"], "", "aa", 1) == ["ab"]  # after need not exist
    assert meta.list_identifiers(o["u"], "a", "0", 2) == ["a", "a/b"]  # after before prefix
    assert meta.list_identifiers(o["u"], "zz", None, 10) == []


def test_usage_and_blob_refs(meta: MetadataStore, o: dict[str, str]) -> None:
    """Usage sums one owner; refs list every row's blob."""
    meta.insert_object(record(o["u"], "x", "1" * 32, size=10))
    meta.insert_object(record(o["u"], "y", "2" * 32, size=5))
    meta.insert_object(record(o["v"], "x", "3" * 32, size=7))
    assert meta.usage(o["u"]) == (2, 15)
    assert meta.usage("nobody") == (0, 0)
    assert sorted(r[0] for r in meta.iter_blob_refs()) == ["1" * 32, "2" * 32, "3" * 32]


def test_ping(meta: MetadataStore) -> None:
    """A healthy store answers ping."""
    meta.ping()


@pytest.mark.parametrize("meta", ["sqlite"], indirect=True)
def test_ping_fails_when_the_file_is_gone(meta: MetadataStore) -> None:
    """A SQLite store whose file was removed is not ready, though its connection still reads."""
    assert isinstance(meta, SQLiteMetadataStore)
    meta.ping()
    meta.path.unlink()
    with pytest.raises(Unavailable):
        meta.ping()


def test_concurrent_writes_each_get_their_own_outcome(
    meta: MetadataStore, o: dict[str, str]
) -> None:
    """Many threads writing at once (some colliding): every write gets its own answer.

    On SQLite the writes share transactions (group commit); one write's failure must undo
    only that write.
    """
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(32)

    def worker(i: int) -> None:
        barrier.wait()
        name = f"dup{i % 4}" if i % 2 else f"own{i}"  # odd threads collide in 4 groups
        try:
            meta.insert_object(record(o["u"], name, f"{i:032x}"))
            outcomes[i] = "ok"
        except ObjectExists:
            outcomes[i] = "exists"

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(outcomes[i] == "ok" for i in range(0, 32, 2))
    assert sorted(outcomes[i] for i in range(1, 32, 2)).count("ok") == 2  # dup1 and dup3
    stored = meta.list_identifiers(o["u"], "", None, 100)
    assert stored == sorted([f"own{i}" for i in range(0, 32, 2)] + ["dup1", "dup3"])
    for name in stored:
        row = meta.get_object(o["u"], name)
        assert row is not None and outcomes[int(row.blob_id, 16)] == "ok"


def test_inline_bytes_round_trip_and_swap_away(meta: MetadataStore, o: dict[str, str]) -> None:
    """A row keeps a small object's bytes exactly; a swap to a blob-backed version drops them."""
    data = bytes(range(256)) * 16 + b"\x00"  # every byte value, a NUL at the end
    small = INLINE_PREFIX + "1" * 32
    rec = record(o["u"], "small", small, size=len(data), inline=data)
    meta.insert_object(rec)
    got = meta.get_object(o["u"], "small")
    assert got == rec and got is not None and got.inline == data
    assert inline_refs(meta) == [(small, o["u"], "small")]
    assert file_refs(meta) == []
    on_disk = replace(rec, blob_id="2" * 32, inline=None, revision=2)
    assert meta.swap_object(on_disk, rec)
    assert meta.get_object(o["u"], "small") == on_disk
    assert inline_refs(meta) == []
    assert file_refs(meta) == [("2" * 32, o["u"], "small")]
    back = replace(on_disk, blob_id=INLINE_PREFIX + "3" * 32, inline=b"", size=0, revision=3)
    assert meta.swap_object(back, on_disk)
    assert meta.get_object(o["u"], "small") == back  # empty bytes are not "no bytes"
    assert inline_refs(meta) == [(INLINE_PREFIX + "3" * 32, o["u"], "small")]


def test_bytes_left_by_a_writer_unaware_of_inline_rows_are_ignored(
    meta: MetadataStore, o: dict[str, str]
) -> None:
    """An older release swaps in a blob id without clearing the bytes: the blob id decides."""
    rec = record(o["u"], "k", INLINE_PREFIX + "1" * 32, size=3, inline=b"old")
    meta.insert_object(rec)
    stale = replace(rec, blob_id="2" * 32, size=10, revision=2)  # inline=b"old" still set
    assert meta.swap_object(stale, rec)
    got = meta.get_object(o["u"], "k")
    assert got is not None and got.blob_id == "2" * 32 and got.inline is None
    assert file_refs(meta) == [("2" * 32, o["u"], "k")]  # fsck keeps the new blob
    assert inline_refs(meta) == []


def test_inline_bytes_survive_metadata_patch_and_come_back_on_delete(
    meta: MetadataStore, o: dict[str, str]
) -> None:
    """Patching user metadata keeps the bytes; the deleted row hands them back."""
    rec = record(o["u"], "small", INLINE_PREFIX + "a" * 32, inline=b"abc")
    meta.insert_object(rec)
    assert meta.set_metadata(o["u"], "small", {"x": "y"}, NOW, rec)
    patched = meta.get_object(o["u"], "small")
    assert patched is not None and patched.inline == b"abc" and patched.metadata == {"x": "y"}
    gone = meta.delete_object(o["u"], "small")
    assert gone is not None and gone.inline == b"abc"
    assert inline_refs(meta) == []


def test_get_user_and_object(meta: MetadataStore, o: dict[str, str]) -> None:
    """The user with their object; the user alone when the object is not theirs; nothing."""
    rec = record(o["u"], "mine", INLINE_PREFIX + "b" * 32, inline=b"abc")
    meta.insert_object(rec)
    user, got = meta.get_user_and_object(o["u"], "mine")
    assert user == meta.get_user(o["u"]) and got == rec
    user, got = meta.get_user_and_object(o["v"], "mine")
    assert user is not None and user.username == "v" and got is None
    assert meta.get_user_and_object(o["u"], "other") == (meta.get_user(o["u"]), None)
    assert meta.get_user_and_object("no-such-user", "mine") == (None, None)
