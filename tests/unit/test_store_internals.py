"""Store internals that the contract suite cannot see: lock waits and the hashing helper."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mos.errors import Unavailable
from mos.stores.digests import PIPELINE_MIN, StreamDigests
from mos.stores.sqlite import SQLiteMetadataStore


def test_queued_writers_do_not_add_up_their_waits(tmp_path: Path) -> None:
    """With the database locked by another process, every queued writer gives up in about
    one busy timeout, not one per writer ahead of it."""
    store = SQLiteMetadataStore(tmp_path / "m.db", busy_timeout_ms=300)
    other = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    waits: list[float] = []
    errors: list[BaseException] = []

    def write(i: int) -> None:
        started = time.monotonic()
        try:
            store.create_user(f"user{i}", "hash", datetime.now(UTC))
        except Unavailable as exc:
            errors.append(exc)
        waits.append(time.monotonic() - started)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.execute("ROLLBACK")
    other.close()
    assert len(errors) == 6
    # Stacked waits would reach 6 x 0.3 s for the last writer.
    assert max(waits) < 1.2, waits
    store.create_user("after", "hash", datetime.now(UTC))
    store.close()


def test_hashing_helper_errors_reach_the_caller() -> None:
    """A failure in the helper thread is raised by info(), and nothing hangs."""
    digests = StreamDigests(md5=False)
    with digests:
        digests.update(b"x" * PIPELINE_MIN)
        digests.update("not bytes" * PIPELINE_MIN)  # type: ignore[arg-type]
        digests.update(b"y" * PIPELINE_MIN)
        with pytest.raises(TypeError):
            digests.info("0" * 32, 3 * PIPELINE_MIN)


def test_a_version_1_database_gains_the_inline_column(tmp_path: Path) -> None:
    """A metadata file written before small objects lived in rows opens, and its rows read."""
    from mos.stores.sqlite import _MIGRATIONS

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(_MIGRATIONS[0] + "PRAGMA user_version = 1;")
    old.execute("INSERT INTO users VALUES ('u1', 'alice', 'h', 0)")
    old.execute(
        "INSERT INTO objects VALUES ('u1', CAST('a.txt' AS BLOB), ?, 'a.txt', 'text/plain',"
        " 3, ?, 0, 0, '{}', 1)", ("b" * 32, "0" * 64),
    )
    old.commit()
    old.close()
    store = SQLiteMetadataStore(path)
    try:
        row = store.get_object("u1", "a.txt")
        assert row is not None and row.blob_id == "b" * 32 and row.inline is None
        assert store.iter_blob_refs() == [("b" * 32, "u1", "a.txt")]
        version = store._conn().execute("PRAGMA user_version").fetchone()[0]
        assert version == len(_MIGRATIONS) == 2
    finally:
        store.close()


def hold_writer_lock(lock: Path) -> subprocess.Popen[str]:
    """Another process that takes the flock and keeps it until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\n"
         "sys.stdin.readline()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_writer_lock_held_too_long_is_503_not_a_hang(tmp_path: Path) -> None:
    """Behind a stopped or stuck holder a write gives up after the busy timeout."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db", busy_timeout_ms=300)
    holder = hold_writer_lock(tmp_path / "metadata.db-writer.lock")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            store.create_user("alice", "h", datetime.now(UTC))
        assert 0.25 < time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    store.create_user("alice", "h", datetime.now(UTC))  # free again: the write goes through
    store.close()


def test_writers_of_other_processes_queue_on_the_writer_lock_file(tmp_path: Path) -> None:
    """A write waits while another process holds the flock beside the database, then runs."""
    import fcntl

    store = SQLiteMetadataStore(tmp_path / "metadata.db")
    holder = hold_writer_lock(tmp_path / "metadata.db-writer.lock")
    try:
        done = threading.Event()
        writer = threading.Thread(
            target=lambda: (store.create_user("alice", "h", datetime.now(UTC)), done.set())
        )
        writer.start()
        assert not done.wait(0.5), "the write did not wait for the other process's lock"
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert done.wait(10), "the write did not run once the lock was released"
        writer.join()
        assert store.get_user_by_name("alice") is not None
        fd = os.open(tmp_path / "metadata.db-writer.lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the write
        os.close(fd)
    finally:
        holder.kill()
        holder.wait()
        store.close()


def _insert(store: SQLiteMetadataStore, owner: str, name: str, data: bytes = b"x") -> None:
    from mos.stores.base import INLINE_PREFIX, ObjectRecord

    now = datetime.now(UTC)
    store.insert_object(ObjectRecord(
        owner_id=owner, identifier=name, blob_id=INLINE_PREFIX + os.urandom(16).hex(),
        filename=name, content_type="text/plain", size=len(data), sha256="0" * 64,
        created_at=now, updated_at=now, inline=data,
    ))


def _queue_behind_a_leader(
    store: SQLiteMetadataStore, writes: list[Callable[[], None]]
) -> tuple[list[threading.Thread], dict[int, BaseException | None]]:
    """Play a leader at work, then start the writes one by one (so they queue in order)."""
    outcomes: dict[int, BaseException | None] = {}

    def run(i: int, write: Callable[[], None]) -> None:
        try:
            write()
            outcomes[i] = None
        except BaseException as exc:
            outcomes[i] = exc

    with store._turn:
        store._leading = True
    threads = []
    for i, write in enumerate(writes):
        threads.append(threading.Thread(target=run, args=(i, write)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while len(store._queue) < i + 1:
            assert time.monotonic() < deadline, "the write did not queue"
            time.sleep(0.005)
    return threads, outcomes


def _finish(store: SQLiteMetadataStore, threads: list[threading.Thread]) -> None:
    """End the played leader's turn and wait for the writes."""
    store._hand_over()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a write never got its outcome"


def test_queued_writes_share_one_commit(tmp_path: Path) -> None:
    """Writes that queue while another thread leads are committed together, once."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db")
    owner = store.create_user("alice", "h", datetime.now(UTC)).id
    commits: list[str] = []
    traced: set[int] = set()
    original = store._conn

    def tracing() -> sqlite3.Connection:
        conn = original()
        if id(conn) not in traced:
            traced.add(id(conn))
            conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
        return conn

    store._conn = tracing  # type: ignore[method-assign]
    threads, outcomes = _queue_behind_a_leader(
        store, [lambda i=i: _insert(store, owner, f"k{i}") for i in range(6)])
    _finish(store, threads)
    assert outcomes == {i: None for i in range(6)}
    assert commits == ["COMMIT"], "six queued writes should need one commit"
    assert store.list_identifiers(owner, "", None, 10) == [f"k{i}" for i in range(6)]
    store.close()


def test_a_full_disk_fails_the_whole_batch_and_commits_nothing(tmp_path: Path) -> None:
    """A row that cannot fit ends the transaction: the small row queued after it, which
    would fit, is not run on its own either; every write of the batch answers 507."""
    from mos.errors import InsufficientStorage

    store = SQLiteMetadataStore(tmp_path / "metadata.db")
    owner = store.create_user("alice", "h", datetime.now(UTC)).id
    _insert(store, owner, "room", os.urandom(8 * 1024))
    store.delete_object(owner, "room")  # free pages: a small row fits, a big one does not
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    original = store._conn

    def capped() -> sqlite3.Connection:
        conn = original()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    store._conn = capped  # type: ignore[method-assign]
    threads, outcomes = _queue_behind_a_leader(store, [
        lambda: _insert(store, owner, "big", os.urandom(256 * 1024)),
        lambda: _insert(store, owner, "small", b"tiny"),
    ])
    _finish(store, threads)
    assert isinstance(outcomes[0], InsufficientStorage), outcomes
    assert isinstance(outcomes[1], InsufficientStorage), outcomes
    store._conn = original  # type: ignore[method-assign]
    assert store.list_identifiers(owner, "", None, 10) == []
    _insert(store, owner, "small", b"tiny")  # on its own, the small row fits
    assert store.list_identifiers(owner, "", None, 10) == ["small"]
    store.close()


def test_a_leader_that_cannot_take_the_lock_fails_its_batch(tmp_path: Path) -> None:
    """If the leader cannot take the flock, every write it took answers 503; none is stored
    and none is reported done."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db", busy_timeout_ms=300)
    owner = store.create_user("alice", "h", datetime.now(UTC)).id
    holder = hold_writer_lock(tmp_path / "metadata.db-writer.lock")
    try:
        threads, outcomes = _queue_behind_a_leader(
            store, [lambda i=i: _insert(store, owner, f"w{i}") for i in range(3)])
        _finish(store, threads)
    finally:
        holder.kill()
        holder.wait()
    assert all(isinstance(outcomes[i], Unavailable) for i in range(3)), outcomes
    assert store.list_identifiers(owner, "", None, 10) == []
    store.close()


def test_a_write_that_times_out_in_the_queue_never_runs(tmp_path: Path) -> None:
    """Unavailable means not written: a write given up on is taken out of the queue."""
    store = SQLiteMetadataStore(tmp_path / "metadata.db", busy_timeout_ms=200)
    owner = store.create_user("alice", "h", datetime.now(UTC)).id
    with store._turn:
        store._leading = True  # a leader that does not finish in time
    with pytest.raises(Unavailable):
        _insert(store, owner, "late")
    assert store._queue == []
    store._hand_over()
    _insert(store, owner, "next")  # the next write runs alone, without the one given up on
    assert store.list_identifiers(owner, "", None, 10) == ["next"]
    store.close()
