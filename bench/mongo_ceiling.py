"""python -m bench.mongo_ceiling [--mongo-url URL]: what pymongo alone gets from the database.

No mos, no HTTP: one pymongo client on this machine does what mos's MongoDB + GridFS stores
do per request, against a SecantusDB of its own on a free loopback port (the stand-in the
tests and `bench compare --mongo` use) or, with --mongo-url, a throwaway database on a real
MongoDB. The figures are the database's ceiling for the MongoDB rows of `bench compare`:
mos cannot move bytes faster than its database hands them over.

- large: 64 MiB written as 1 MiB GridFS-style chunks, `insert_many` of 4 with w=majority
  (as `GridFSBlobStore.put`), then read back with one `find_one` per chunk (as
  `ChunkReader`), MB/s (10^6 bytes/s);
- small: per call on a collection of 1 000 and of 5 000 rows of 4 KiB: `find_one` by
  (owner, identifier), `insert_one`, `find_one` + `delete_one` of that version (as mos's
  DELETE), `find_one_and_delete`;
- list: a page of 101 identifiers after the middle (range, sort, limit, as
  `list_identifiers`) for an owner holding 1 000 and 10 000 rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from bench.mongo import database

MIB = 1024 * 1024
Doc = dict[str, Any]


def median_ms(fn: Callable[[int], object], calls: int) -> float:
    """Median wall milliseconds of fn(i) for i in range(calls)."""
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def large(chunks: Collection[Doc], runs: int) -> None:
    """64 MiB in and out as 1 MiB chunks."""
    chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
    block = os.urandom(MIB)
    put, get = [], []
    for run in range(runs):
        files_id = f"ceiling-{run}"
        t0 = time.perf_counter()
        for b in range(16):
            chunks.insert_many([{"files_id": files_id, "n": 4 * b + i, "data": block}
                                for i in range(4)], ordered=True)
        put.append(64 * MIB / (time.perf_counter() - t0) / 1e6)
        t0 = time.perf_counter()
        for n in range(64):
            doc = chunks.find_one({"files_id": files_id, "n": n}, {"data": 1})
            assert doc is not None and len(doc["data"]) == MIB
        get.append(64 * MIB / (time.perf_counter() - t0) / 1e6)
        chunks.delete_many({"files_id": files_id})
    print(f"64 MiB as 1 MiB chunks, median of {runs}: insert_many x4 (w=majority)"
          f" {statistics.median(put):.0f} MB/s, find_one per chunk {statistics.median(get):.0f}"
          " MB/s", flush=True)


def key(i: int) -> Doc:
    """The filter of row i."""
    return {"owner_id": "o", "identifier": f"id{i:06d}"}


def row(i: int, inline: bytes) -> Doc:
    """Row i, with the fields mos's versioned delete filters on."""
    return {**key(i), "blob_id": f"inline-{i:032x}", "revision": 1, "inline": inline}


def versioned_delete(objects: Collection[Doc], i: int) -> None:
    """What `MongoMetadataStore.delete_object` sends: read the row, delete that version."""
    doc = objects.find_one(key(i))
    assert doc is not None
    version = {"_id": doc["_id"], "blob_id": doc["blob_id"], "revision": doc["revision"]}
    assert objects.delete_one(version).deleted_count == 1


def small(objects: Collection[Doc], calls: int) -> None:
    """Per-call latency of the row operations at two collection sizes."""
    objects.create_index([("owner_id", ASCENDING), ("identifier", ASCENDING)], unique=True)
    inline = os.urandom(4096)
    for rows in (1000, 5000):
        objects.delete_many({})
        objects.insert_many([row(i, inline) for i in range(rows)])
        found = median_ms(lambda i: objects.find_one(key(i)), calls)
        fad = median_ms(lambda i: objects.find_one_and_delete(key(i)), calls)
        ins = median_ms(lambda i: objects.insert_one(row(i, inline)), calls)
        dele = median_ms(lambda i: versioned_delete(objects, i), calls)
        print(f"{rows} rows of 4 KiB, median ms per call: find_one {found:.2f},"
              f" insert_one {ins:.2f}, find_one + delete_one of that version (mos) {dele:.2f},"
              f" find_one_and_delete {fad:.2f}", flush=True)


def listing(objects: Collection[Doc], calls: int) -> None:
    """A 101-identifier page after the middle, for owners of 1 000 and 10 000 rows."""
    objects.delete_many({})
    for rows in (1000, 10_000):
        owner = f"owner{rows}"
        objects.insert_many([{"owner_id": owner, "identifier": f"id{i:06d}"}
                             for i in range(rows)])
        after = f"id{rows // 2:06d}"
        ms = median_ms(lambda _i, owner=owner, after=after: list(
            objects.find({"owner_id": owner, "identifier": {"$gt": after}}, {"identifier": 1})
            .sort([("identifier", ASCENDING)]).limit(101)), calls)
        print(f"list page of 101 after the middle, owner of {rows} rows: {ms:.2f} ms",
              flush=True)


def measure(db: Database[Doc], stand_in: bool, runs: int, calls: int) -> None:
    """The three parts, in throwaway collections of db that are dropped at the end."""
    db = db.with_options(write_concern=WriteConcern(w="majority"))
    print(f"database: {'SecantusDB (stand-in)' if stand_in else 'the --mongo-url given'}",
          flush=True)
    names = ("ceiling.chunks", "ceiling.objects", "ceiling.listing")
    try:
        large(db[names[0]], runs)
        small(db[names[1]], calls)
        listing(db[names[2]], max(10, calls // 10))
    finally:
        for name in names:
            db.drop_collection(name)


def main(argv: list[str] | None = None) -> int:
    """Run the three parts."""
    p = argparse.ArgumentParser(prog="python -m bench.mongo_ceiling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mongo-url", help="a throwaway database on a real MongoDB")
    p.add_argument("--runs", type=int, default=3, help="64 MiB transfers each way")
    p.add_argument("--calls", type=int, default=200, help="calls per small operation")
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="mos-mongo-ceiling-"))
    try:
        with database(args.mongo_url, base, "mos_ceiling") as (url, db):
            client: MongoClient[Doc] = MongoClient(url)
            try:
                measure(client.get_default_database(default="mos_ceiling"), db is not None,
                        args.runs, args.calls)
            finally:
                client.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
