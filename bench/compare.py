"""python -m bench compare: mos next to nginx (the HTTP limit), a bare Flask app (the
framework floor) and dd (the disk limit), in one run, with ratios and the issue's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench.client import Client, new_user
from bench.large import GIB, MIB, blocks, multipart_body, multipart_chunks, size_label
from bench.mongo import database
from bench.nginx import NginxServer, ensure_installed, version
from bench.pyload import run_python_load
from bench.report import busy_before, fs_type, machine, write_json
from bench.server import MachineCpu, ManagedServer, RssSampler, summarize_log, tree_cpu, tree_of
from bench.small import percentile
from bench.wrkload import OBJECT_SIZE, Load, run_wrk, split_threads, wrk_threads

RESULTS = Path(__file__).resolve().parent / "results"
POOL = 128  # 4 KiB objects that GET, HEAD, metadata GET and list read
# A timed run moves at least this much (1 MiB: 128 objects, 64 MiB: 2): a single 64 MiB
# transfer lasts ~30 ms here, too short to time on a shared machine.
MIN_BYTES_PER_RUN = 128 * MIB
SWEEP = (1, 4, 16, 64)


def log(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class System:
    """One server under test."""

    name: str  # mos, mos-mongo, nginx, flask
    kind: str  # mos | nginx | flask
    server: Any
    token: str | None = None
    username: str | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return str(self.server.url)

    @property
    def host_port(self) -> tuple[str, int]:
        """Host and port."""
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    @property
    def pid(self) -> int | None:
        """Master pid (its tree is the server)."""
        proc = self.server.proc
        return proc.pid if proc is not None else None

    def client(self) -> Client:
        """A fresh keep-alive client."""
        host, port = self.host_port
        return Client(host, port, self.token)


class BareFlaskServer(ManagedServer):
    """bench/bare_flask.py under Gunicorn, managed like mos serve."""

    def command(self) -> list[str]:
        """The argv."""
        return [sys.executable, "-m", "bench.bare_flask", "--port", str(self.port)]


# --------------------------------------------------------------------------- large objects

def timed(fn: Callable[[], bool], pid: int | None) -> dict[str, Any]:
    """Run fn once: wall seconds, CPU of server and this client, server RSS peak growth."""
    procs = tree_of(pid) if pid else []
    srv0 = tree_cpu(procs)
    cli0 = time.process_time()
    mcpu = MachineCpu()
    with RssSampler(pid) as rss:
        t0 = time.perf_counter()
        ok = fn()
        seconds = time.perf_counter() - t0
    return {"ok": ok, "seconds": seconds, "client_cpu_s": time.process_time() - cli0,
            "server_cpu_s": tree_cpu(procs) - srv0 if procs else None,
            "server_rss_growth": rss.growth, "machine_busy_pct": mcpu.busy_pct()}


def mos_put(c: Client, ident: str, size: int) -> bool:
    """Raw PUT."""
    status, answer = c.send_stream("PUT", "/data/file/" + quote(ident, safe="/"), blocks(size),
                                   size, {"Content-Type": "application/octet-stream"})
    return status == 201 and f'"size":{size}'.encode() in answer.replace(b" ", b"")


def mos_post(c: Client, ident: str, size: int) -> bool:
    """Multipart POST."""
    ctype, head, tail, length = multipart_body(ident, size)
    status, answer = c.send_stream("POST", "/data/file", multipart_chunks(head, size, tail),
                                   length, {"Content-Type": ctype})
    return status == 201 and f'"size":{size}'.encode() in answer.replace(b" ", b"")


def http_get(c: Client, path: str, size: int, buf: memoryview) -> bool:
    """GET, read in 1 MiB chunks and discarded."""
    status, got = c.download(path, buf)
    return status == 200 and got == size


def nginx_put(c: Client, path: str, size: int) -> bool:
    """WebDAV PUT."""
    status, _ = c.send_stream("PUT", path, blocks(size), size)
    return status in (201, 204)


def dd(args: list[str]) -> bool:
    """Run dd; True if it succeeded."""
    return subprocess.run(["dd", *args, "status=none"], check=False).returncode == 0


Op = tuple[str, str, Callable[[], bool], int | None]


def plan_round(systems: list[System], nginx: System, clients: dict[str, Client], size: int,
               per_run: int, tag: str, dd_dir: Path, buf: memoryview) -> tuple[
        dict[str, list[str]], dict[str, list[str]], list[str], list[Path], list[Op], list[Op]]:
    """Names and timed operations of one round: uploads first, then downloads."""
    mib = max(1, size // MIB)
    ids = {s.name: [f"large/{tag}-put-{i}" for i in range(per_run)] for s in systems}
    pids = {s.name: [f"large/{tag}-post-{i}" for i in range(per_run)] for s in systems}
    npaths = [f"/large/{tag}-{i}" for i in range(per_run)]
    files = [dd_dir / f"{tag}-{i}" for i in range(per_run)]
    uploads: list[Op] = []
    downloads: list[Op] = []
    for s in systems:
        c = clients[s.name]
        uploads.append((s.name, "PUT raw", lambda c=c, n=s.name: all(
            [mos_put(c, i, size) for i in ids[n]]), s.pid))
        uploads.append((s.name, "POST multipart", lambda c=c, n=s.name: all(
            [mos_post(c, i, size) for i in pids[n]]), s.pid))
        downloads.append((s.name, "GET", lambda c=c, n=s.name: all(
            [http_get(c, "/data/file/" + i, size, buf) for i in ids[n]]), s.pid))
    nc = clients[nginx.name]
    uploads.append(("nginx", "PUT", lambda: all(
        [nginx_put(nc, p, size) for p in npaths]), nginx.pid))
    downloads.append(("nginx", "GET", lambda: all(
        [http_get(nc, p, size, buf) for p in npaths]), nginx.pid))
    uploads.append(("dd", "write conv=fsync", lambda: all(
        [dd(["if=/dev/zero", f"of={f}", "bs=1M", f"count={mib}", "conv=fsync"])
         for f in files]), None))
    downloads.append(("dd", "read (page cache hot)", lambda: all(
        [dd([f"if={f}", "of=/dev/null", "bs=1M"]) for f in files]), None))
    downloads.append(("dd", "read O_DIRECT (disk)", lambda: all(
        [dd([f"if={f}", "of=/dev/null", "bs=1M", "iflag=direct"]) for f in files]),
        None))
    return ids, pids, npaths, files, uploads, downloads


def large_size(systems: list[System], nginx: System, size: int, runs: int, dd_dir: Path,
               seq: list[int]) -> list[dict[str, Any]]:
    """All systems, one size, runs rounds; in each round the systems take turns."""
    per_run = max(1, MIN_BYTES_PER_RUN // size)
    buf = memoryview(bytearray(MIB))
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    clients = {s.name: s.client() for s in [*systems, nginx]}
    try:
        for r in range(runs):
            seq[0] += 1
            tag = f"{size_label(size).replace(' ', '')}-{seq[0]}"
            ids, pids, npaths, files, uploads, downloads = plan_round(
                systems, nginx, clients, size, per_run, tag, dd_dir, buf)
            # Rotate the order each round, so no system always goes first.
            for group in (uploads, downloads):
                k = r % len(group)
                for name, op, fn, pid in group[k:] + group[:k]:
                    # Untimed: dirty pages the previous system left (nginx's PUT has no fsync)
                    # must not be written back while the next one is timed.
                    os.sync()
                    res = timed(fn, pid)
                    res["mb_per_s"] = size * per_run / res["seconds"] / 1e6
                    samples.setdefault((name, op), []).append(res)
                    log(f"  {size_label(size):>7} {name:<9} {op:<22} {res['mb_per_s']:9.1f} MB/s"
                        f"{'' if res['ok'] else '  (ERROR)'}")
            for s in systems:
                for i in ids[s.name] + pids[s.name]:
                    clients[s.name].request("DELETE", "/data/file/" + i)
            for p in npaths:
                clients[nginx.name].request("DELETE", p)
            for f in files:
                f.unlink(missing_ok=True)
    finally:
        for c in clients.values():
            c.close()
    rows = []
    for (name, op), rs in samples.items():
        speeds = [x["mb_per_s"] for x in rs]
        growth = [x["server_rss_growth"] for x in rs if x["server_rss_growth"] is not None]
        srv = [x["server_cpu_s"] / x["seconds"] for x in rs if x["server_cpu_s"] is not None]
        rows.append({
            "system": name, "op": op, "size": size, "size_label": size_label(size),
            "objects_per_run": per_run, "runs": rs, "errors": sum(not x["ok"] for x in rs),
            "median_mb_per_s": statistics.median(speeds), "min_mb_per_s": min(speeds),
            "max_mb_per_s": max(speeds),
            "median_server_cpu_pct": 100 * statistics.median(srv) if srv else None,
            "median_client_cpu_pct": 100 * statistics.median(
                x["client_cpu_s"] / x["seconds"] for x in rs),
            "peak_server_rss_growth_mib": max(growth) / MIB if growth else None,
        })
    return rows


# --------------------------------------------------------------------------- small objects

def mos_ids(system: System, prefix: str) -> list[str]:
    """Every identifier the bench user holds under prefix (follows next)."""
    c = system.client()
    out: list[str] = []
    after: str | None = None
    try:
        while True:
            q = f"/data/user_file?prefix={quote(prefix, safe='')}&limit=1000"
            if after is not None:
                q += f"&after={quote(after, safe='')}"
            status, data = c.request("GET", q)
            if status != 200:
                raise RuntimeError(f"list answered {status}")
            doc = json.loads(data)
            out += doc["file_identifiers"]
            after = doc.get("next")
            if not after:
                return out
    finally:
        c.close()


def small_loads(system: System, op: str, c: int) -> Load | None:
    """The wrk load of one operation on one system (None: not measured there)."""
    tok = system.token
    octet = {"Content-Type": "application/octet-stream"}
    if system.kind == "mos":
        return {
            "PUT": Load("PUT", "unique", f"/data/file/small/c{c}/", ok_status=(201,), body=True,
                        headers=octet, token=tok),
            "GET": Load("GET", "pool", "/data/file/pool/", pool_size=POOL, want_len=OBJECT_SIZE,
                        token=tok),
            "GET metadata": Load("GET", "pool", "/data/metadata/pool/", pool_size=POOL,
                                 token=tok),
            "list (limit=100)": Load("GET", "fixed", "/data/user_file?prefix=pool/&limit=100",
                                     token=tok),
        }.get(op)
    if system.kind == "flask":
        return {
            "PUT": Load("PUT", "unique", f"/data/file/c{c}/", ok_status=(201,), body=True,
                        headers=octet),
            "GET": Load("GET", "pool", "/data/file/pool/", pool_size=POOL, want_len=OBJECT_SIZE),
        }.get(op)
    return {
        "PUT": Load("PUT", "unique", f"/small/c{c}/", ok_status=(201, 204), body=True),
        "GET": Load("GET", "pool", "/pool/", pool_size=POOL, want_len=OBJECT_SIZE),
    }.get(op)


def cell(system: System, op: str, c: int, seconds: float, work: Path) -> dict[str, Any] | None:
    """Measure one operation on one system at concurrency c."""
    # Write back what earlier cells and the large objects left dirty (nginx's PUTs are never
    # fsynced): the kernel would otherwise throttle this cell's log and WAL writes for it.
    os.sync()
    if op == "HEAD":
        if system.kind == "flask":
            return None
        paths = [f"/data/file/pool/{i}" if system.kind == "mos" else f"/pool/{i}"
                 for i in range(POOL)]
        host, port = system.host_port
        res = run_python_load(host, port, system.token, "HEAD", paths, c, seconds, 200,
                              system.pid)
    elif op == "DELETE":
        if system.kind != "mos":
            return None
        ids = mos_ids(system, f"small/c{c}/")
        load = Load("DELETE", "list", "/data/file/", ok_status=(200,), token=system.token,
                    lists=split_threads([quote(i, safe="/") for i in ids], wrk_threads(c)),
                    filler_path="/healthz")
        res = run_wrk(system.url, load, c, seconds, work, system.pid)
        res["generator"] = "wrk"
        res["objects_available"] = len(ids)
    else:
        load = small_loads(system, op, c)
        if load is None:
            return None
        res = run_wrk(system.url, load, c, seconds, work, system.pid)
        res["generator"] = "wrk"
    res.update({"system": system.name, "op": op, "concurrency": c})
    log(f"  c={c:<3} {system.name:<9} {op:<17} {res['ops']:>7} ops {res['ops_per_s']:9.1f}/s"
        f"  p50 {res['p50_ms']:7.2f} ms  p99 {res['p99_ms']:8.2f} ms  errors {res['errors']}"
        f"  server CPU {res['server_cpu_pct'] or 0:.0f}%"
        f"  client CPU {res['client_cpu_pct'] or 0:.0f}%"
        + (f"  ({res['sample']})" if res.get("sample") else ""))
    return res


def prepare_pools(systems: list[System], nginx: System) -> None:
    """POOL 4 KiB objects on every mos and as static files for nginx."""
    body = os.urandom(OBJECT_SIZE)
    for s in systems:
        c = s.client()
        try:
            for i in range(POOL):
                status, _ = c.request("PUT", f"/data/file/pool/{i}", body,
                                      {"Content-Type": "application/octet-stream"})
                if status not in (200, 201):
                    raise SystemExit(f"bench: pool PUT on {s.name} answered {status}")
        finally:
            c.close()
    pool = nginx.server.root / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    for i in range(POOL):
        (pool / str(i)).write_bytes(body)


def small_all(systems: list[System], nginx: System, flask: System, seconds: float,
              work: Path) -> list[dict[str, Any]]:
    """4 KiB cells at concurrency 1 and 16, then GET at 4 and 64; systems take turns."""
    rows: list[dict[str, Any]] = []
    turn = 0
    everyone = [*systems, nginx, flask]
    for c in (1, 16):
        for op in ("PUT", "GET", "HEAD", "GET metadata", "list (limit=100)", "DELETE"):
            k = turn % len(everyone)
            turn += 1
            for s in everyone[k:] + everyone[:k]:
                r = cell(s, op, c, seconds, work)
                if r is not None:
                    rows.append(r)
    for c in SWEEP:
        if c in (1, 16):
            continue
        k = turn % len(everyone)
        turn += 1
        for s in everyone[k:] + everyone[:k]:
            r = cell(s, "GET", c, seconds, work)
            if r is not None:
                rows.append(r)
    return rows


# --------------------------------------------------------------------------- list vs size

def scale_insert_sqlite(db: Path, owner: str, count: int) -> None:
    """Copy the user's template row (scale/000000) count-1 times under new identifiers."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        # The template is 1 byte, so it holds its bytes inline: the copies do too.
        cols = ("owner_id, identifier, blob_id, filename, content_type, size, sha256,"
                " created_at, updated_at, metadata, revision, inline_data")
        row = conn.execute(f"SELECT {cols} FROM objects WHERE owner_id=? AND identifier=?",  # noqa: S608
                           (owner, b"scale/000000")).fetchone()
        rows = ((row[0], f"scale/{i:06d}".encode(), *row[2:]) for i in range(1, count))
        with conn:
            conn.executemany(f"INSERT INTO objects ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                             rows)
    finally:
        conn.close()


def sqlite_user_id(db: Path, username: str) -> str:
    """The id of a user, read from the SQLite file."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return str(conn.execute("SELECT id FROM users WHERE username=?",
                                (username,)).fetchone()[0])
    finally:
        conn.close()


def scale_insert_mongo(url: str, username: str, count: int) -> None:
    """The same for MongoDB: copy the template document."""
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url)
    try:
        db = client.get_default_database()
        owner = db.users.find_one({"username_lower": username.lower()})["_id"]  # type: ignore[index]
        doc = db.objects.find_one({"owner_id": owner, "identifier": "scale/000000"})
        assert doc is not None
        doc.pop("_id")
        batch: list[dict[str, Any]] = []
        for i in range(1, count):
            batch.append({**doc, "identifier": f"scale/{i:06d}"})
            if len(batch) == 5000 or i == count - 1:
                db.objects.insert_many(batch, ordered=False)
                batch = []
    finally:
        client.close()


def list_latency(system: System, token: str, path: str, seconds: float) -> dict[str, Any]:
    """One client, one request at a time: for at least `seconds` and 5 requests (at most
    2000 requests or 120 s), so a slow backend still gets real figures."""
    c = system.client()
    c.headers["Authorization"] = f"Bearer {token}"
    lat: list[float] = []
    errors = 0
    procs = tree_of(system.pid) if system.pid else []
    srv0 = tree_cpu(procs)
    start = time.monotonic()
    try:
        c.request("GET", path)  # warm the connection, untimed
        while len(lat) < 2000 and time.monotonic() - start < 120:
            if len(lat) >= 5 and time.monotonic() - start >= seconds:
                break
            t0 = time.perf_counter()
            status, data = c.request("GET", path)
            lat.append(time.perf_counter() - t0)
            errors += status != 200 or b"file_identifiers" not in data
    finally:
        c.close()
    wall = time.monotonic() - start
    lat.sort()
    return {"generator": "python, 1 connection, sequential", "ops": len(lat), "seconds": wall,
            "ops_per_s": len(lat) / wall, "p50_ms": 1000 * percentile(lat, 50),
            "p99_ms": 1000 * percentile(lat, 99), "errors": errors,
            "server_cpu_pct": 100 * (tree_cpu(procs) - srv0) / wall if procs else None}


def scale(system: System, seconds: float, work: Path, counts: tuple[int, ...]) -> list[
        dict[str, Any]]:
    """List-page latency for users holding each count of objects (rows inserted directly)."""
    host, port = system.host_port
    users = []
    for n in counts:
        name, token = new_user(host, port)
        c = Client(host, port, token)
        try:
            status, _ = c.request("PUT", "/data/file/scale/000000", b"x",
                                  {"Content-Type": "application/octet-stream"})
        finally:
            c.close()
        if status != 201:
            raise SystemExit(f"bench: scale template PUT answered {status}")
        users.append((n, name, token))
    srv: ManagedServer = system.server
    db = srv.data_dir / "metadata.db"
    ids = {name: sqlite_user_id(db, name) for _, name, _ in users} if not srv.env else {}
    log(f"  {system.name}: stopping mos to insert rows directly")
    srv.stop()
    t0 = time.perf_counter()
    for n, name, _ in users:
        if srv.env:
            scale_insert_mongo(srv.env["MOS_METADATA_URL"], name, n)
        else:
            scale_insert_sqlite(db, ids[name], n)
    insert_s = time.perf_counter() - t0
    log(f"  {system.name}: inserted {sum(counts) - len(counts)} rows in {insert_s:.1f} s;"
        " restarting mos")
    srv.start()
    rows = []
    for n, _name, token in users:
        after = f"scale/{n // 2:06d}"
        path = f"/data/user_file?limit=100&after={quote(after, safe='')}"
        c = Client(host, port, token)
        try:
            status, data = c.request("GET", path)
        finally:
            c.close()
        got = len(json.loads(data)["file_identifiers"]) if status == 200 else 0
        res = list_latency(system, token, path, seconds)
        res.update({"system": system.name, "objects": n, "after": after, "page_items": got,
                    "insert_seconds": insert_s})
        log(f"  {system.name} list page, user with {n:>6} objects: p50 {res['p50_ms']:.2f} ms"
            f" p99 {res['p99_ms']:.2f} ms, {res['ops']} requests, {got} items,"
            f" errors {res['errors']}")
        rows.append(res)
    return rows


# --------------------------------------------------------------------------- report

def fmt(v: float | None, digits: int = 1) -> str:
    """A number or '-'."""
    if v is None:
        return "-"
    return f"{v:,.{digits}f}".replace(",", " ") if abs(v) >= 1000 else f"{v:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    """a / b as 0.00, '-' if either is missing."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def build_table(res: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The one table: absolute figures and ratios."""
    moses = res["mos_systems"]
    large = {(r["system"], r["op"], r["size"]): r for r in res["large"]}
    small = {(r["system"], r["op"], r["concurrency"]): r for r in res["small"]}
    head = ["measurement", "unit"]
    for m in moses:
        head += [m, f"{m}÷nginx", f"{m}÷Flask"]
    head += ["nginx", "bare Flask", "dd"]
    head += [f"{m} p50/p99 ms" for m in moses] + ["nginx p50/p99 ms", "Flask p50/p99 ms",
                                                   "errors"]
    rows: list[list[str]] = []

    def mb(system: str, op: str, size: int) -> float | None:
        r = large.get((system, op, size))
        return r["median_mb_per_s"] if r else None

    def errs(rs: list[dict[str, Any] | None]) -> str:
        return "/".join("-" if r is None else str(r["errors"]) for r in rs)

    for size in res["settings"]["sizes"]:
        lab = size_label(size)
        for title, op, nop, dop in (
            ("upload raw PUT", "PUT raw", "PUT", "write conv=fsync"),
            ("upload multipart POST", "POST multipart", "PUT", "write conv=fsync"),
            ("download GET", "GET", "GET", "read (page cache hot)"),
        ):
            row = [f"{lab} {title}", "MB/s"]
            ngx = mb("nginx", nop, size)
            for m in moses:
                v = mb(m, op, size)
                row += [fmt(v), ratio(v, ngx), "-"]
            row += [fmt(ngx), "-", fmt(mb("dd", dop, size))]
            row += ["-"] * (len(moses) + 2)
            row.append(errs([large.get((m, op, size)) for m in moses]
                            + [large.get(("nginx", nop, size))]))
            rows.append(row)
        if ("dd", "read O_DIRECT (disk)", size) in large:
            rows.append([f"{lab} dd read O_DIRECT (cold, disk)", "MB/s"] + ["-"] * 3 * len(moses)
                        + ["-", "-", fmt(mb("dd", "read O_DIRECT (disk)", size))]
                        + ["-"] * (len(moses) + 2) + ["-"])
    big = max(res["settings"]["sizes"])
    for op, nop in (("PUT raw", "PUT"), ("POST multipart", "PUT"), ("GET", "GET")):
        row = [f"RSS peak growth, {size_label(big)} {op}", "MiB"]
        for m in moses:
            r = large.get((m, op, big))
            row += [fmt(r["peak_server_rss_growth_mib"] if r else None), "-", "-"]
        r = large.get(("nginx", nop, big))
        row += [fmt(r["peak_server_rss_growth_mib"] if r else None), "-", "-"]
        row += ["-"] * (len(moses) + 3)
        rows.append(row)
    ops = ("PUT", "GET", "HEAD", "GET metadata", "list (limit=100)", "DELETE")
    for c in (1, 16):
        for op in ops:
            row = [f"4 KiB {op} c={c}", "ops/s"]
            ngx = small.get(("nginx", op, c))
            fl = small.get(("flask", op, c))
            for m in moses:
                r = small.get((m, op, c))
                v = r["ops_per_s"] if r else None
                row += [fmt(v, 0), ratio(v, ngx["ops_per_s"] if ngx else None),
                        ratio(v, fl["ops_per_s"] if fl else None)]
            row += [fmt(ngx["ops_per_s"] if ngx else None, 0),
                    fmt(fl["ops_per_s"] if fl else None, 0), "-"]
            for r in [*(small.get((m, op, c)) for m in moses), ngx, fl]:
                row.append("-" if r is None else f"{r['p50_ms']:.2f}/{r['p99_ms']:.2f}")
            row.append(errs([*(small.get((m, op, c)) for m in moses), ngx, fl]))
            rows.append(row)
    for c in SWEEP:
        row = [f"4 KiB GET vs concurrency, c={c}", "ops/s"]
        ngx = small.get(("nginx", "GET", c))
        fl = small.get(("flask", "GET", c))
        for m in moses:
            r = small.get((m, "GET", c))
            v = r["ops_per_s"] if r else None
            row += [fmt(v, 0), ratio(v, ngx["ops_per_s"] if ngx else None),
                    ratio(v, fl["ops_per_s"] if fl else None)]
        row += [fmt(ngx["ops_per_s"] if ngx else None, 0),
                fmt(fl["ops_per_s"] if fl else None, 0), "-"]
        for r in [*(small.get((m, "GET", c)) for m in moses), ngx, fl]:
            row.append("-" if r is None else f"{r['p50_ms']:.2f}/{r['p99_ms']:.2f}")
        row.append(errs([*(small.get((m, "GET", c)) for m in moses), ngx, fl]))
        rows.append(row)
    # upload MB/s vs object size: 4 KiB from the PUT cells (c=1), the rest from above.
    for c in (1, 16):
        row = [f"upload vs size: 4 KiB PUT c={c}", "MB/s"]
        ngx = small.get(("nginx", "PUT", c))
        fl = small.get(("flask", "PUT", c))
        for m in moses:
            r = small.get((m, "PUT", c))
            v = r["ops_per_s"] * OBJECT_SIZE / 1e6 if r else None
            row += [fmt(v, 2), ratio(v, ngx["ops_per_s"] * OBJECT_SIZE / 1e6 if ngx else None),
                    ratio(v, fl["ops_per_s"] * OBJECT_SIZE / 1e6 if fl else None)]
        row += [fmt(ngx["ops_per_s"] * OBJECT_SIZE / 1e6 if ngx else None, 2),
                fmt(fl["ops_per_s"] * OBJECT_SIZE / 1e6 if fl else None, 2), "-"]
        row += ["-"] * (len(moses) + 3)
        rows.append(row)
    sc = {(r["system"], r["objects"]): r for r in res["scale"]}
    counts = sorted({r["objects"] for r in res["scale"]})
    for n in counts:
        for q in ("p50", "p99"):
            count = f"{n:,}".replace(",", " ")
            row = [f"list page (limit=100, after=middle), user with {count} objects, {q}", "ms"]
            for m in moses:
                r = sc.get((m, n))
                row += [fmt(r[f"{q}_ms"] if r else None, 2), "-", "-"]
            row += ["-", "-", "-"] + ["-"] * (len(moses) + 2)
            row.append(errs([sc.get((m, n)) for m in moses]) if q == "p50" else "-")
            rows.append(row)
    if len(counts) == 2:
        hi, lo = (f"{v:,}".replace(",", " ") for v in (counts[1], counts[0]))
        row = [f"list page p50, {hi} ÷ {lo} objects", "x"]
        for m in moses:
            a, b = sc.get((m, counts[0])), sc.get((m, counts[1]))
            row += [ratio(b["p50_ms"] if b else None, a["p50_ms"] if a else None), "-", "-"]
        row += ["-", "-", "-"] + ["-"] * (len(moses) + 3)
        rows.append(row)
    return head, rows


def render_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown-compatible table; numbers right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
           "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                          for i, w in enumerate(widths)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                     for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                   + " |")
    return out


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, read from the measurements."""
    large = {(r["system"], r["op"], r["size"]): r for r in res["large"]}
    small = {(r["system"], r["op"], r["concurrency"]): r for r in res["small"]}
    sc = {(r["system"], r["objects"]): r for r in res["scale"]}
    out: list[dict[str, Any]] = []

    def add(system: str, what: str, value: float | None, limit: float, below: bool,
            detail: str) -> None:
        if value is None:
            out.append({"system": system, "target": what, "value": None, "met": None,
                        "detail": "not measured in this run"})
            return
        met = value < limit if below else value >= limit
        out.append({"system": system, "target": what, "value": round(value, 3), "met": met,
                    "detail": detail})

    for m in res["mos_systems"]:
        for size in (64 * MIB, GIB):
            lab = size_label(size)
            n = large.get(("nginx", "GET", size))
            g = large.get((m, "GET", size))
            add(m, f"download {lab} >= 0.8 x nginx",
                g["median_mb_per_s"] / n["median_mb_per_s"] if g and n else None, 0.8, False,
                f"{fmt(g and g['median_mb_per_s'])} vs {fmt(n and n['median_mb_per_s'])} MB/s")
            np_ = large.get(("nginx", "PUT", size))
            for op in ("PUT raw", "POST multipart"):
                u = large.get((m, op, size))
                add(m, f"upload {lab} {op} >= 0.6 x nginx",
                    u["median_mb_per_s"] / np_["median_mb_per_s"] if u and np_ else None, 0.6,
                    False, f"{fmt(u and u['median_mb_per_s'])} vs"
                    f" {fmt(np_ and np_['median_mb_per_s'])} MB/s")
        for op, lim in (("GET", 0.6), ("PUT", 0.3)):
            a, f = small.get((m, op, 16)), small.get(("flask", op, 16))
            add(m, f"4 KiB {op} c=16 >= {lim} x bare Flask",
                a["ops_per_s"] / f["ops_per_s"] if a and f else None, lim, False,
                f"{fmt(a and a['ops_per_s'], 0)} vs {fmt(f and f['ops_per_s'], 0)} ops/s")
        for op in ("PUT raw", "POST multipart", "GET"):
            r = large.get((m, op, GIB))
            add(m, f"RSS growth during 1 GiB {op} < 100 MiB",
                r["peak_server_rss_growth_mib"] if r else None, 100, True,
                f"{fmt(r and r['peak_server_rss_growth_mib'])} MiB")
        a, b = sc.get((m, 1000)), sc.get((m, 100_000))
        add(m, "list page, 100 000-object user <= 1.5 x 1 000-object user (p50)",
            b["p50_ms"] / a["p50_ms"] if a and b else None, 1.5 + 1e-9, True,
            f"{fmt(b and b['p50_ms'], 2)} vs {fmt(a and a['p50_ms'], 2)} ms")
        errors = sum(r["errors"] for r in res["large"] if r["system"] == m) + sum(
            r["errors"] for r in res["small"] if r["system"] == m) + sum(
            r["errors"] for r in res["scale"] if r["system"] == m)
        add(m, "no errors under any load", errors, 1, True, f"{errors} errors")
    return out


def render(res: dict[str, Any]) -> str:
    """Header, the table, the generator check, the targets."""
    m = res["machine"]
    out = [
        f"mos compare, {res['started_at']}, {res['elapsed_s']} s",
        f"command: {res['command']}",
        f"machine: {m['logical_cpus']} logical CPUs ({m['cpu_model']}), {m['memory_gib']} GiB"
        f" RAM, kernel {m['kernel']}, Python {m['python']}, {m['nginx']}, {m['wrk']}",
        "data dirs: " + "; ".join(f"{k} on {v}" for k, v in m["data_dir_fs"].items()),
        f"git: {m['git_commit']}; machine busy before the run:"
        f" {res['machine_busy_before_pct']:.0f}% of all CPUs",
        "servers: " + "; ".join(f"{k}: {v}" for k, v in res["servers"].items()),
        "",
        "MB/s = 10^6 bytes/s, median of runs; 4 KiB cells: "
        f"{res['settings']['cell_seconds']:g} s each, wrk (HEAD: multi-process Python client);"
        " errors = mos/.../nginx/Flask. nginx PUT and dd read are without fsync / page-cache"
        " hot; dd write uses conv=fsync.",
        "",
    ]
    head, rows = build_table(res)
    out += render_table(head, rows)
    out.append("")
    small = {(r["system"], r["op"], r["concurrency"]): r for r in res["small"]}
    ng = small.get(("nginx", "GET", 16))
    out.append("load generator check (the generator is not what limits mos if it reaches far"
               " more against nginx):")
    for op, c in (("GET", 16), ("PUT", 16), ("HEAD", 16), ("GET", 64)):
        n = small.get(("nginx", op, c))
        if not n:
            continue
        best = max((small[(s, op, c)]["ops_per_s"] for s in res["mos_systems"]
                    if (s, op, c) in small), default=0.0)
        out.append(f"  {op} c={c}: {n.get('generator', 'wrk')} drove nginx at"
                   f" {n['ops_per_s']:.0f} ops/s (client CPU {n['client_cpu_pct'] or 0:.0f}%"
                   f" of a core), {n['ops_per_s'] / best if best else float('nan'):.1f}x the"
                   " best mos figure")
    del ng
    out.append("")
    out.append("targets (issue 5):")
    for t in res["targets"]:
        state = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        out.append(f"  [{state:>7}] {t['system']}: {t['target']}: {t['value']} ({t['detail']})")
    for name, summary in res.get("server_logs", {}).items():
        out.append(f"{name} log: statuses {summary.get('status_classes')}, problem lines"
                   f" {summary.get('problem_lines') or 'none'}")
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def parse_args(argv: list[str]) -> argparse.Namespace:
    """The compare command line."""
    p = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="1 MiB and 64 MiB only, 2 s per 4 KiB cell")
    p.add_argument("--mongo", action="store_true",
                   help="also measure mos on MongoDB + GridFS (SecantusDB on a free port)")
    p.add_argument("--mongo-url", metavar="URL",
                   help="with --mongo: a real MongoDB instead of SecantusDB; the URL names a"
                        " throwaway database (mongodb://host/mos_bench), which the run fills")
    p.add_argument("--json", type=Path, default=RESULTS / "compare.json",
                   help="where to write the results (default bench/results/compare.json)")
    p.add_argument("--runs", type=int, default=3, help="runs per large-object figure")
    p.add_argument("--cell-seconds", type=float, help="seconds per 4 KiB cell (5; quick 2)")
    p.add_argument("--data-root", type=Path, help="parent of the temporary dirs ($TMPDIR)")
    args = p.parse_args(argv)
    if args.cell_seconds is None:
        args.cell_seconds = 2.0 if args.quick else 5.0
    if args.mongo_url and not args.mongo:
        p.error("--mongo-url needs --mongo")
    return args


def main(argv: list[str]) -> int:
    """Start everything, measure, stop everything, report."""
    args = parse_args(argv)
    t0 = time.monotonic()
    ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="mos-compare-", dir=args.data_root))
    work = base / "wrk"
    work.mkdir()
    dd_dir = base / "dd"
    dd_dir.mkdir()
    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = [MIB, 64 * MIB] + ([] if args.quick else [GIB])
    started: list[Any] = []
    databases = contextlib.ExitStack()  # closed after the servers that use them stop
    res: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join(["python", "-m", "bench", "compare", *argv]),
        "settings": {"sizes": sizes, "runs": args.runs, "cell_seconds": args.cell_seconds,
                     "pool": POOL, "sweep": list(SWEEP), "quick": args.quick,
                     "mongo": args.mongo, "mongo_url": bool(args.mongo_url)},
        "machine_busy_before_pct": busy_before(),
    }
    try:
        mos = ManagedServer(base / "mos", RESULTS / "compare-mos.log", None, None,
                            append_log=True)
        (RESULTS / "compare-mos.log").unlink(missing_ok=True)
        systems = [System("mos", "mos", mos)]
        if args.mongo:
            url, _db = databases.enter_context(database(args.mongo_url, base, "mos_bench"))
            env = {"MOS_METADATA_URL": url, "MOS_BLOB_STORE": "gridfs"}
            (RESULTS / "compare-mos-mongo.log").unlink(missing_ok=True)
            systems.append(System("mos-mongo", "mos", ManagedServer(
                base / "mos-mongo", RESULTS / "compare-mos-mongo.log", None, None, env=env,
                append_log=True)))
        nginx = System("nginx", "nginx", NginxServer(base / "nginx"))
        flask = System("flask", "flask", BareFlaskServer(
            base / "flask", RESULTS / "compare-flask.log", None, None))
        for s in [*systems, nginx, flask]:
            started.append(s.server)
            s.server.start()
            log(f"bench: {s.name} on {s.url} (pid {s.pid})")
        for s in systems:
            host, port = s.host_port
            s.username, s.token = new_user(host, port)
        res["mos_systems"] = [s.name for s in systems]
        mongo_label = (" (MongoDB+GridFS at the --mongo-url given)" if args.mongo_url
                       else " (MongoDB+GridFS on SecantusDB)")
        res["servers"] = {
            **{s.name: f"mos serve, {len(tree_of(s.pid or 0)) - 1} gthread workers x"
               f" {8} threads" + (mongo_label if s.server.env else
                                  " (SQLite + disk)") for s in systems},
            "nginx": f"nginx, {os.cpu_count()} workers, sendfile on, WebDAV PUT",
            "flask": f"bare Flask, {len(tree_of(flask.pid or 0)) - 1} gthread workers x 8"
                     " threads",
        }
        dirs = {"mos": base / "mos", "nginx root": nginx.server.root,
                "nginx body temp": nginx.server.body_temp, "dd": dd_dir}
        if args.mongo and not args.mongo_url:
            dirs["SecantusDB"] = base / "secantus"
        res["machine"] = machine(base / "mos")
        res["machine"].update({
            "kernel": os.uname().release,
            "nginx": version(["nginx", "-v"]),
            "wrk": version(["wrk", "-v"]).split(" Copyright")[0],
            "data_dir_fs": {k: fs_type(v) for k, v in dirs.items()},
        })
        log("bench: large objects")
        res["large"] = []
        seq = [0]
        for size in sizes:
            res["large"] += large_size(systems, nginx, size, args.runs, dd_dir, seq)
        log("bench: 4 KiB objects")
        prepare_pools(systems, nginx)
        res["small"] = small_all(systems, nginx, flask, args.cell_seconds, work)
        log("bench: list page vs objects held")
        res["scale"] = []
        for s in systems:
            res["scale"] += scale(s, args.cell_seconds, work, (1000, 100_000))
    finally:
        for srv in reversed(started):
            with contextlib.suppress(Exception):
                srv.stop()
        with contextlib.suppress(Exception):
            databases.close()
        shutil.rmtree(base, ignore_errors=True)
    res["server_logs"] = {
        name: summarize_log(RESULTS / f"compare-{name}.log")
        for name in [*res.get("mos_systems", []), "flask"]
        if (RESULTS / f"compare-{name}.log").exists()
    }
    res["elapsed_s"] = round(time.monotonic() - t0, 1)
    res["targets"] = targets(res)
    head, rows = build_table(res)
    res["table"] = {"columns": head, "rows": rows}
    text = render(res)
    res["text"] = text
    write_json(res, args.json)
    print(text)
    log(f"bench: results written to {args.json} in {res['elapsed_s']} s")
    return 0
