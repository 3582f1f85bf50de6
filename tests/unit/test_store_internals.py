"""Store internals that the contract suite cannot see: lock waits and the hashing helper."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
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
