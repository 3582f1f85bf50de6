"""Metadata store on MongoDB (pymongo): majority writes, retryable writes, unique indexes."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from mos.errors import Conflict, Unavailable
from mos.stores.base import (
    ObjectExists,
    ObjectRecord,
    UsernameTaken,
    UserRecord,
    bytes_in_row,
)

log = logging.getLogger("mos")
P = ParamSpec("P")
R = TypeVar("R")

Document = dict[str, Any]

# Defaults a URL may override: bounded waits, so an outage answers 503 within seconds.
CLIENT_DEFAULTS: dict[str, Any] = {
    # A server that refuses connections is noticed within this...
    "serverSelectionTimeoutMS": 3000,
    "connectTimeoutMS": 3000,
    # ...one that accepts and then hangs within this (per operation on an open connection).
    "socketTimeoutMS": 10000,
    "retryWrites": True,
    "retryReads": True,
    "w": "majority",
    "appname": "mos",
}
DEFAULT_DATABASE = "mos"
# Each round delete_object loses means another writer changed the row meanwhile.
_DELETE_ROUNDS = 100
# Majority writes wait at most this long for the replicas, then fail (as 503) rather than hang.
MAJORITY = WriteConcern("majority", wtimeout=10000)


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every driver failure into Unavailable at the store boundary.

    Outages (refused, timed out, no primary) are the usual cause; others (authentication,
    write concern) are a deployment problem that a retry after the operator's fix cures, so
    they are 503 as well, and logged. The driver's text stays in `detail`, out of responses.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PyMongoError as exc:
            if not isinstance(exc, ConnectionFailure):
                log.warning("MongoDB failed: %r", exc)
            err = Unavailable("the metadata store (MongoDB) does not answer")
            text = str((getattr(exc, "details", None) or {}).get("errmsg") or exc)
            err.detail = " ".join(text.split())[:300]
            raise err from exc

    return wrapper


def connect(url: str) -> tuple[MongoClient[Document], Database[Document]]:
    """A client for the URL (with bounded timeouts unless the URL sets its own) and its database.

    The client connects lazily, so building it never blocks; each Gunicorn worker builds its
    own after the fork, since pymongo clients are not fork-safe.
    """
    given = {k.lower() for k in parse_uri(url)["options"]}
    options = {k: v for k, v in CLIENT_DEFAULTS.items() if k.lower() not in given}
    client: MongoClient[Document] = MongoClient(url, tz_aware=True, **options)
    return client, client.get_default_database(default=DEFAULT_DATABASE)


def _ms(t: datetime) -> datetime:
    """BSON dates hold milliseconds; cut to them so what is stored is what is read."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


class MongoMetadataStore:
    """Users and objects in two MongoDB collections."""

    def __init__(self, db: Database[Document], client: MongoClient[Document] | None = None) -> None:
        self._client = client
        self._users: Collection[Document] = db.get_collection("users", write_concern=MAJORITY)
        self._objects: Collection[Document] = db.get_collection("objects", write_concern=MAJORITY)
        self._db = db

    @classmethod
    def from_url(cls, url: str) -> MongoMetadataStore:
        """Open the database named by a mongodb:// URL (default `mos`)."""
        client, db = connect(url)
        return cls(db, client)

    @translated
    def prepare(self) -> None:
        """Create the unique indexes (idempotent); fails fast if MongoDB is unreachable."""
        # A lower-cased copy makes names unique case-insensitively on any server; a collation
        # index would do the same but is not supported everywhere the wire protocol is.
        self._users.create_index("username_lower", unique=True, name="username_lower_unique")
        self._objects.create_index(
            [("owner_id", ASCENDING), ("identifier", ASCENDING)],
            unique=True, name="owner_identifier_unique",
        )

    @property
    def database(self) -> Database[Document]:
        """The database, for a GridFS blob store on the same client."""
        return self._db

    def close(self) -> None:
        """Close the client if this store owns it."""
        if self._client is not None:
            self._client.close()

    @translated
    def ping(self) -> None:
        """A round trip to the server."""
        self._db.command("ping")

    @translated
    def create_user(self, username: str, password_hash: str, created_at: datetime) -> UserRecord:
        """Insert a user; the unique index on the lower-cased name rejects case variants."""
        user = UserRecord(uuid.uuid4().hex, username, password_hash, _ms(created_at))
        try:
            self._users.insert_one({
                "_id": user.id, "username": username, "username_lower": username.lower(),
                "password_hash": password_hash, "created_at": user.created_at,
            })
        except DuplicateKeyError:
            raise UsernameTaken(username) from None
        return user

    @translated
    def get_user(self, user_id: str) -> UserRecord | None:
        """Look a user up by id."""
        return _user(self._users.find_one({"_id": user_id}))

    @translated
    def get_user_by_name(self, username: str) -> UserRecord | None:
        """Look a user up by name, any case."""
        return _user(self._users.find_one({"username_lower": username.lower()}))

    @translated
    def insert_object(self, record: ObjectRecord) -> None:
        """Insert a row; the unique index makes concurrent creators race fairly."""
        try:
            self._objects.insert_one(_document(record))
        except DuplicateKeyError:
            raise ObjectExists(record.identifier) from None

    @translated
    def swap_object(self, record: ObjectRecord, expected: ObjectRecord) -> bool:
        """Compare-and-swap the whole row on its blob id and revision."""
        doc = _document(record)
        for key in ("owner_id", "identifier", "created_at"):
            doc.pop(key)
        result = self._objects.update_one(
            {"owner_id": record.owner_id, "identifier": record.identifier,
             "blob_id": expected.blob_id, "revision": expected.revision},
            {"$set": doc},
        )
        return result.matched_count == 1

    @translated
    def set_metadata(
        self,
        owner_id: str,
        identifier: str,
        metadata: dict[str, str],
        updated_at: datetime,
        expected: ObjectRecord,
    ) -> bool:
        """Compare-and-swap the user metadata on the blob id and revision."""
        result = self._objects.update_one(
            {"owner_id": owner_id, "identifier": identifier, "blob_id": expected.blob_id,
             "revision": expected.revision},
            {"$set": {"metadata": _pairs(metadata), "updated_at": _ms(updated_at)},
             "$inc": {"revision": 1}},
        )
        return result.matched_count == 1

    @translated
    def get_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """Read one row."""
        doc = self._objects.find_one({"owner_id": owner_id, "identifier": identifier})
        return _record(doc) if doc else None

    @translated
    def get_user_and_object(
        self, user_id: str, identifier: str
    ) -> tuple[UserRecord | None, ObjectRecord | None]:
        """Two finds: a $lookup would cost the server more than the second round trip."""
        user = self.get_user(user_id)
        return user, (self.get_object(user_id, identifier) if user is not None else None)

    @translated
    def delete_object(self, owner_id: str, identifier: str) -> ObjectRecord | None:
        """Read the row, then delete exactly that version (every writer changes the revision);
        of concurrent deleters only one gets the row back. A row changed in between is read
        again, up to _DELETE_ROUNDS times, then 409, as a PUT or PATCH that keeps losing.

        Not find_one_and_delete, though it is one round trip less on MongoDB: SecantusDB, the
        stand-in the tests and benchmarks run on, answers it with a collection scan (7.5-13 ms
        per call at 1 000 rows, 39-63 ms at 5 000, against 1.3-1.6 ms for find + this
        delete_one; `python -m bench.mongo_ceiling`), and not atomically: racing with
        updates, it returned an older version than the one it removed (the delete races in
        tests/contract/test_metadata_store.py fail with it).
        """
        key = {"owner_id": owner_id, "identifier": identifier}
        for _ in range(_DELETE_ROUNDS):
            doc = self._objects.find_one(key)
            if doc is None:
                return None
            version = {"_id": doc["_id"], "blob_id": doc["blob_id"], "revision": doc["revision"]}
            if self._objects.delete_one(version).deleted_count == 1:
                return _record(doc)
        raise Conflict("The object changed too often to be deleted; retry.", code="conflict")

    @translated
    def list_identifiers(
        self, owner_id: str, prefix: str, after: str | None, limit: int
    ) -> list[str]:
        """One index range scan on (owner_id, identifier); MongoDB compares strings bytewise."""
        bounds: dict[str, str] = {}
        if after is not None and after >= prefix:
            bounds["$gt"] = after
        else:
            bounds["$gte"] = prefix
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            bounds["$lt"] = upper
        cursor = (
            self._objects.find({"owner_id": owner_id, "identifier": bounds}, {"identifier": 1})
            .sort([("identifier", ASCENDING)])
            .limit(limit)
        )
        return [doc["identifier"] for doc in cursor]

    @translated
    def usage(self, owner_id: str) -> tuple[int, int]:
        """Count and total size of the owner's objects."""
        rows = list(self._objects.aggregate([
            {"$match": {"owner_id": owner_id}},
            {"$group": {"_id": None, "n": {"$sum": 1}, "bytes": {"$sum": "$size"}}},
        ]))
        return (int(rows[0]["n"]), int(rows[0]["bytes"])) if rows else (0, 0)

    @translated
    def iter_blob_refs(self) -> list[tuple[str, str, str]]:
        """Every row's blob id, for fsck (read whole, so driver errors surface here)."""
        projection = {"blob_id": 1, "owner_id": 1, "identifier": 1}
        docs = self._objects.find({}, projection)
        return [(d["blob_id"], d["owner_id"], d["identifier"]) for d in docs]


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with prefix.

    UTF-8 byte order is code-point order, so bumping the last code point that can grow is
    enough; surrogates never occur in valid strings, so U+D7FF bumps to U+E000.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = 0xE000 if last == 0xD7FF else last + 1
            return "".join(chars) + chr(nxt)
    return None


def _pairs(metadata: dict[str, str]) -> list[dict[str, str]]:
    # Stored as pairs, not as a subdocument: names may hold '.' or start with '$'.
    return [{"k": k, "v": v} for k, v in metadata.items()]


def _document(r: ObjectRecord) -> Document:
    return {
        "owner_id": r.owner_id, "identifier": r.identifier, "blob_id": r.blob_id,
        "filename": r.filename, "content_type": r.content_type, "size": r.size,
        "sha256": r.sha256, "created_at": _ms(r.created_at), "updated_at": _ms(r.updated_at),
        "metadata": _pairs(r.metadata), "revision": r.revision,
        # Always present (None when the bytes are in the blob store), so a swap clears it.
        "inline": r.inline,
    }


def _record(d: Document) -> ObjectRecord:
    return ObjectRecord(
        owner_id=d["owner_id"], identifier=d["identifier"], blob_id=d["blob_id"],
        filename=d["filename"], content_type=d["content_type"], size=int(d["size"]),
        sha256=d["sha256"], created_at=d["created_at"].astimezone(UTC),
        updated_at=d["updated_at"].astimezone(UTC),
        metadata={p["k"]: p["v"] for p in d["metadata"]}, revision=int(d["revision"]),
        # BSON binary comes back as bytes, or as bson.Binary for subtypes other than 0.
        inline=bytes_in_row(d["blob_id"], None if d.get("inline") is None else bytes(d["inline"])),
    )


def _user(d: Document | None) -> UserRecord | None:
    if d is None:
        return None
    return UserRecord(d["_id"], d["username"], d["password_hash"], d["created_at"].astimezone(UTC))
