"""python -m bench.mongo_cost [--mongo-url URL]: where a 4 KiB request on MongoDB spends CPU.

Starts `mos serve` (2 workers x 8 threads) on MongoDB + GridFS, by default on a SecantusDB
of its own on a free loopback port (the stand-in the tests use), drives 4 KiB PUT and GET at
c=16 with wrk for 5 s each, and prints ops/s with the CPU time per request of mos's processes
and of the database server's, so a reader can tell which side bounds the MongoDB figures of
`bench compare --mongo`. With --mongo-url (a throwaway database on a real MongoDB) only
mos's side is measured. Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import psutil

from bench.ab import cell
from bench.client import new_user
from bench.mongo import database
from bench.server import ManagedServer
from bench.wrkload import run_wrk


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of the processes (those that ended count as 0)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def split(server: ManagedServer, db_procs: list[psutil.Process], label: str, seconds: float,
          work: Path) -> None:
    """Drive 4 KiB PUT and GET at c=16; print ops/s and CPU per request on each side."""
    assert server.proc is not None
    token = new_user("127.0.0.1", server.port)[1]
    mos_procs = server.process_tree()
    for op in ("put", "get"):
        load = cell(op, token, server.port, 0)
        mos0, db0, t0 = cpu_seconds(mos_procs), cpu_seconds(db_procs), time.monotonic()
        res = run_wrk(server.url, load, 16, seconds, work, server.proc.pid)
        wall = time.monotonic() - t0
        ops = max(1, round(res["ops_per_s"] * wall))
        mos_cpu, db_cpu = cpu_seconds(mos_procs) - mos0, cpu_seconds(db_procs) - db0
        print(f"4 KiB {op.upper()} c=16: {res['ops_per_s']:.0f} ops/s, errors {res['errors']};"
              f" CPU per request: mos {1e3 * mos_cpu / ops:.2f} ms"
              f" ({100 * mos_cpu / wall:.0f}% of a core), {label}"
              f" {1e3 * db_cpu / ops:.2f} ms ({100 * db_cpu / wall:.0f}% of a core)",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run both cells and print the split."""
    p = argparse.ArgumentParser(prog="python -m bench.mongo_cost", description=__doc__)
    p.add_argument("--mongo-url", help="a real MongoDB (throwaway database) instead of SecantusDB")
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (apt-get install wrk)")
    base = Path(tempfile.mkdtemp(prefix="mos-mongo-cost-"))
    try:
        with database(args.mongo_url, base, "mos_cost") as (url, db):
            server = ManagedServer(base / "data", base / "server.log", None, None,
                                   env={"MOS_METADATA_URL": url, "MOS_BLOB_STORE": "gridfs"})
            try:
                server.start()
                db_procs: list[psutil.Process] = []
                if db is not None and db.process is not None:
                    root = psutil.Process(db.process.pid)
                    db_procs = [root, *root.children(recursive=True)]
                label = "SecantusDB" if db is not None else "database (not measured)"
                split(server, db_procs, label, args.seconds, base)
            finally:
                server.stop()  # before its database stops
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
