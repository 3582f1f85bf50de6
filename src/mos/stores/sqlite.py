"""Metadata store on SQLite: WAL, one connection per thread, schema versioned by user_version."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from mos.errors import InsufficientStorage, Unavailable
from mos.stores.base import (
    ObjectExists,
    ObjectRecord,
    UsernameTaken,
    UserRecord,
    bytes_in_row,
)

P = ParamSpec("P")
R = TypeVar("R")

# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    -- identifier is a BLOB of UTF-8 bytes so that ordering and prefix bounds are bytewise.
    CREATE TABLE objects (
        owner_id     TEXT NOT NULL REFERENCES users(id),
        identifier   BLOB NOT NULL,
        blob_id      TEXT NOT NULL,
        filename     TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        metadata     TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        PRIMARY KEY (owner_id, identifier)
    ) WITHOUT ROWID;
    """,
    # Small objects keep their bytes in the row: one commit (one fsync) stores them.
    "ALTER TABLE objects ADD COLUMN inline_data BLOB",
]


def _translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn driver failures (locked, I/O) into Unavailable at the store boundary."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):  # SQLITE_FULL: "database or disk is full"
                raise InsufficientStorage() from exc
            raise Unavailable("the metadata store is busy or unreachable") from exc

    return wrapper


def _one_writer(fn: Callable[P, R]) -> Callable[P, R]:
    """Writes of a process share commits (group commit); processes take turns on an flock.

    A write is queued; the thread that gets the process's writer lock runs every write queued
    by then in one transaction, so one commit (one WAL fsync, the cost of a durable write)
    serves them all, and each waiting thread finds its own result or error when it gets the
    lock. A write that fails undoes only its own statement (SQLite's statement rollback); an
    error that ends the transaction (I/O, full disk) fails the whole batch, none of which
    was committed. A write returns only after the commit that holds it, so durability is as
    with one commit per write; a lone write commits alone.

    Between processes, the leader takes an flock on a lock file beside the database: SQLite's
    busy handler would sleep 1, 2, 5, 10... ms per try while a commit takes ~0.25 ms. SQLite's
    busy wait is left to programs that do not take the flock (a backup, the sqlite3 shell).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, SQLiteMetadataStore)
        item = _Pending(functools.partial(fn, *args, **kwargs))
        batch = store._enqueue_or_follow(item)
        if batch is not None:  # this thread leads: it runs what was queued, its own included
            try:
                store._lead(batch)
            finally:
                store._hand_over()
        if item.error is not None:
            # Each waiter raises its own exception object (a shared one would collect every
            # thread's traceback); the original stays attached as the cause.
            err = item.error
            if batch is None:
                with contextlib.suppress(Exception):
                    err = copy.copy(item.error)
            raise err from item.error.__cause__
        return cast(R, item.result)

    return wrapper


@dataclasses.dataclass(eq=False)
class _Pending:
    """One write waiting for the next commit."""

    op: Callable[[], Any]
    done: bool = False
    result: Any = None
    error: BaseException | None = None


def _run_batch(conn: sqlite3.Connection, batch: list[_Pending]) -> None:
    """Run the queued writes under one commit (one WAL fsync); a lone write commits alone.

    Sets every item's result or error; raises only what ended the whole batch.
    """
    if conn.in_transaction:  # never left open by us, but a lone write must not join one
        conn.execute("ROLLBACK")
    if len(batch) == 1:
        try:
            batch[0].result = batch[0].op()
        except Exception as exc:
            batch[0].error = exc
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        for item in batch:
            try:
                item.result = item.op()
            except Exception as exc:  # SQLite undid that statement only; the others go on
                item.error = exc
                if not conn.in_transaction:  # an I/O or full-disk error ended it: stop
                    raise
        conn.execute("COMMIT")
    except Exception as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # if this fails too, the caller drops the connection
        for item in batch:  # nothing of the batch was committed: one outcome for all
            item.result, item.error = None, exc


def _flock_within(fd: int, timeout: float) -> None:
    """Take an exclusive flock, trying again every 20 to 250 µs; Unavailable after timeout.

    A blocking flock would wait for ever behind a stopped or stuck holder; the short pauses
    keep the hand-over close to a commit's length (~0.25 ms), unlike SQLite's busy handler.
    """
    deadline = time.monotonic() + timeout
    pause = 0.00002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Unavailable("the metadata store is busy") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.00025)


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _from_micros(v: int) -> datetime:
    return datetime.fromtimestamp(v / 1_000_000, tz=UTC)


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string that starts with prefix."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class SQLiteMetadataStore:
    """Users and objects in one SQLite file."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        # Group commit (see _one_writer): writes wait in _queue; one leader at a time runs them.
        self._queue: list[_Pending] = []
        self._turn = threading.Condition()
        self._leading = False
        self._writer_fd: int | None = None
        # A lock held by another thread at a fork would stay held in the child for ever, and
        # an flock on an inherited descriptor would be shared with the parent, not exclusive.
        os.register_at_fork(after_in_child=self._reset_writer_lock)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _reset_writer_lock(self) -> None:
        self._writer = threading.Lock()
        self._queue = []  # writes of the parent's threads are not the child's to run
        self._turn = threading.Condition()
        self._leading = False
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None

    def _enqueue_or_follow(self, item: _Pending) -> list[_Pending] | None:
        """Queue the write; the batch to run if this thread must lead, None once it is done.

        Waits while another thread leads. A write still queued when the busy timeout runs
        out is taken out and never runs (Unavailable means not written); one a leader has
        taken is waited for, as its outcome is being decided.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        with self._turn:
            self._queue.append(item)
            while not item.done and self._leading:
                left = deadline - time.monotonic()
                if left <= 0 and item in self._queue:
                    self._queue.remove(item)
                    raise Unavailable("the metadata store is busy")
                self._turn.wait(left if left > 0 else 0.05)
            if item.done:
                return None
            self._leading = True
            batch, self._queue = self._queue, []
            return batch

    def _lead(self, batch: list[_Pending]) -> None:
        """Run a batch under the process's writer lock and the flock; settle every item."""
        try:
            with self._writer, self._process_writer_lock():
                conn = self._conn()
                try:
                    _run_batch(conn, batch)
                except BaseException:
                    self._drop_conn(conn)  # a ROLLBACK failed: never reuse that connection
                    raise
        except BaseException as exc:
            # Whatever ran was not committed (the lock, the connection or a ROLLBACK failed).
            for item in batch:
                item.result, item.error = None, exc
            raise
        finally:
            for item in batch:
                item.done = True

    def _hand_over(self) -> None:
        """End this thread's turn as leader and wake the waiters (one of them may lead next)."""
        with self._turn:
            self._leading = False
            self._turn.notify_all()

    def _drop_conn(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    @contextlib.contextmanager
    def _process_writer_lock(self) -> Iterator[None]:
        """Hold the flock on `<database>-writer.lock` (called under self._writer only)."""
        try:
            if self._writer_fd is None:
                self._writer_fd = os.open(
                    f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            fd = self._writer_fd
            _flock_within(fd, self.busy_timeout_ms / 1000)
        except OSError as exc:
            raise Unavailable(f"the metadata writer lock failed: {exc.strerror}") from exc
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def prepare(self) -> None:
        """The schema is migrated when the store opens; nothing more to do."""

    @classmethod
    def from_url(cls, url: str) -> SQLiteMetadataStore:
        """Open the file named by a sqlite:///path URL."""
        return cls(Path(url.removeprefix("sqlite://")))

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection; a forked worker never reuses its parent's."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged upload must survive a power cut, not only a crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._all.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this mos knows"
                )
            for i in range(version, len(_MIGRATIONS)):
                for statement in _MIGRATIONS[i].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {i + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()
        with self._writer:
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None

    @_translated
    def ping(self) -> None:
        """The file is still where it was, and a read is not locked out for long."""
        # An open connection keeps reading a deleted file; a node whose file is gone is not ready.
        if not self.path.is_file():
            raise Unavailable(f"the metadata file {self.path} is gone")
        self._conn().execute("SELECT 1 FROM users LIMIT 1").fetchall()

    @_translated
    @_one_writer
    def create_user(self, username: str, password_hash: str, created_at: datetime) -> UserRecord:
        """Insert a user; the NOCASE unique index rejects names equal but for case."""
        user = UserRecord(uuid.uuid4().hex, username, password_hash, created_at)
        try:
            self._conn().execute(
                "INSERT INTO users (id, username, password_hash, created_at) VALUES (?,?,?,?)",
                (user.id, username, password_hash, _micros(created_at)),
            )
        except sqlite3.IntegrityError:
            raise UsernameTaken(username) from None
        return user

    def _user(self, where: str, arg: str) -> UserRecord | None:
        row = self._conn().execute(
            f"SELECT id, username, password_hash, created_at FROM users WHERE {where} = ?",  # noqa: S608 - where is one of two literals
            (arg,),
        ).fetchone()
        return _user_record(row) if row else None

    @_translated
    def get_user(self, user_id: str) -> UserRecord | None:
        """Look a user up by id."""
        return self._user("id", user_id)

    @_translated
    def get_user_by_name(self, username: str) -> UserRecord | None:
        """Look a user up by name, any case."""
        return self._user("username", username)

    @_translated
    @_one_writer
    def insert_object(self, record: ObjectRecord) -> None:
        """Insert a row; the primary key makes concurrent creators race fairly."""
        try:
            self._conn().execute(
                f"INSERT INTO objects ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - constant columns
                _row(record),
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc) and "PRIMARY KEY" not in str(exc):
                raise  # a missing owner is a bug, not a conflict
            raise ObjectExists(record.identifier) from None

    @_translated
    @_one_writer
    def swap_object(self, record: ObjectRecord, expected: ObjectRecord) -> bool:
        """Compare-and-swap the whole row on its blob id and revision."""
        cur = self._conn().execute(
            "UPDATE objects SET blob_id=?, filename=?, content_type=?, size=?, sha256=?,"
            " updated_at=?, metadata=?, revision=?, inline_data=?"
            " WHERE owner_id=? AND identifier=? AND blob_id=? AND revision=?",
            (
                record.blob_id, record.filename, record.content_type, record.size,
                record.sha256, _micros(record.updated_at),
                json.dumps(record.metadata, ensure_ascii=False), record.revision, record.inline,
                record.owner_id, record.identifier.encode(), expected.blob_id,
                expected.revision,
            ),
        )
        return cur.rowcount == 1

    @_translated
    @_one_writer
    def set_metadata(
        self,
        owner_id: str,
        identifier: str,
        metadata: dict[str, str],
        updated_at: datetime,
        expected: ObjectRecord,
    ) -> bool:
        """Compare-and-swap the user metadata on the blob id and revision."""
        cur = self._conn().execute(
            "UPDATE objects SET metadata=?, updated_at=?, revision=revision+1"
            " WHERE owner_id=? AND identifier=? AND blob_id=? AND revision=?",
            (
                json.dumps(metadata, ensure_ascii=False), _micros(updated_at),
                owner_id, identifier.encode(), expected.blob_id, expected.revision,
            ),
        )
        return cur.rowcount == 1

    @_translated
    def get_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """Read one row."""
        row = self._conn().execute(
            f"SELECT {_COLUMNS} FROM objects WHERE owner_id=? AND identifier=?",  # noqa: S608 - constant columns
            (owner_id, identifier.encode()),
        ).fetchone()
        return _record(row) if row else None

    @_translated
    def get_user_and_object(
        self, user_id: str, identifier: str
    ) -> tuple[UserRecord | None, ObjectRecord | None]:
        """One query for a download's two reads (each SQLite call gives up the GIL)."""
        row = self._conn().execute(_USER_AND_OBJECT, (identifier.encode(), user_id)).fetchone()
        if row is None:
            return None, None
        return _user_record(row), (_record(row[4:]) if row[4] is not None else None)

    @_translated
    @_one_writer
    def delete_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """DELETE ... RETURNING: of concurrent deleters only one gets the row back."""
        row = self._conn().execute(
            f"DELETE FROM objects WHERE owner_id=? AND identifier=? RETURNING {_COLUMNS}",  # noqa: S608 - constant columns
            (owner_id, identifier.encode()),
        ).fetchone()
        return _record(row) if row else None

    @_translated
    def list_identifiers(
        self, owner_id: str, prefix: str, after: str | None, limit: int
    ) -> list[str]:
        """One index range scan: cost follows the page size, not the owner's total."""
        low = prefix.encode()
        clauses: list[str] = ["owner_id = ?"]
        args_b: list[Any] = [owner_id]
        if after is not None and after.encode() >= low:
            clauses.append("identifier > ?")
            args_b.append(after.encode())
        else:
            clauses.append("identifier >= ?")
            args_b.append(low)
        high = _prefix_upper_bound(low)
        if high is not None:
            clauses.append("identifier < ?")
            args_b.append(high)
        rows = self._conn().execute(
            f"SELECT identifier FROM objects WHERE {' AND '.join(clauses)}"  # noqa: S608 - clauses are literals
            " ORDER BY identifier LIMIT ?",
            (*args_b, limit),
        ).fetchall()
        return [bytes(r[0]).decode() for r in rows]

    @_translated
    def usage(self, owner_id: str) -> tuple[int, int]:
        """Count and total size of the owner's objects."""
        row = self._conn().execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects WHERE owner_id=?", (owner_id,)
        ).fetchone()
        return int(row[0]), int(row[1])

    @_translated
    def iter_blob_refs(self) -> list[tuple[str, str, str]]:
        """Every row's blob id, for fsck (read whole, so driver errors surface here)."""
        rows = self._conn().execute("SELECT blob_id, owner_id, identifier FROM objects")
        return [(blob_id, owner_id, bytes(ident).decode()) for blob_id, owner_id, ident in rows]


_COLUMNS = (
    "owner_id, identifier, blob_id, filename, content_type, size, sha256,"
    " created_at, updated_at, metadata, revision, inline_data"
)
_USER_AND_OBJECT = (
    "SELECT u.id, u.username, u.password_hash, u.created_at, "  # noqa: S608 - constant columns
    + ", ".join(f"o.{c.strip()}" for c in _COLUMNS.split(","))
    + " FROM users u LEFT JOIN objects o ON o.owner_id = u.id AND o.identifier = ?"
    " WHERE u.id = ?"
)


def _row(r: ObjectRecord) -> tuple[Any, ...]:
    return (
        r.owner_id, r.identifier.encode(), r.blob_id, r.filename, r.content_type, r.size,
        r.sha256, _micros(r.created_at), _micros(r.updated_at),
        json.dumps(r.metadata, ensure_ascii=False), r.revision, r.inline,
    )


def _user_record(row: tuple[Any, ...]) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], _from_micros(row[3]))


def _record(row: tuple[Any, ...]) -> ObjectRecord:
    return ObjectRecord(
        owner_id=row[0], identifier=bytes(row[1]).decode(), blob_id=row[2], filename=row[3],
        content_type=row[4], size=row[5], sha256=row[6], created_at=_from_micros(row[7]),
        updated_at=_from_micros(row[8]), metadata=json.loads(row[9]), revision=row[10],
        inline=bytes_in_row(row[2], row[11]),
    )
