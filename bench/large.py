"""Large objects: raw PUT, multipart POST and GET throughput, with server RSS and CPU."""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.client import Client, file_path
from bench.server import MachineCpu, RssSampler, tree_cpu, tree_of

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK = os.urandom(MIB)
# Small objects are moved several times per run so that one run lasts long enough to time.
MIN_BYTES_PER_RUN = 16 * MIB


def size_label(size: int) -> str:
    """1 MiB, 64 MiB, 1 GiB."""
    if size >= GIB and size % GIB == 0:
        return f"{size // GIB} GiB"
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size // 1024} KiB"


def blocks(size: int) -> Iterator[bytes]:
    """The object's bytes: the same random 1 MiB block, repeated, the last one cut."""
    left = size
    while left > 0:
        piece = BLOCK if left >= MIB else BLOCK[:left]
        left -= len(piece)
        yield piece


def multipart_body(identifier: str, size: int) -> tuple[str, list[bytes], bytes, int]:
    """Content type, prefix parts, suffix and total length of a multipart upload."""
    boundary = "benchboundary" + secrets.token_hex(8)
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file_identifier"\r\n\r\n'
        f"{identifier}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", [head], tail, len(head) + size + len(tail)


def multipart_chunks(head: list[bytes], size: int, tail: bytes) -> Iterator[bytes]:
    """Stream a multipart body: fields and part headers, the file, the closing boundary."""
    yield from head
    yield from blocks(size)
    yield tail


class LargeBench:
    """Runs the large-object transfers against one server with one keep-alive connection."""

    def __init__(self, client: Client, server_pid: int | None, prefix: str) -> None:
        """Use client (authenticated) and, if known, sample the server's process tree."""
        self.client = client
        self.server_pid = server_pid
        self.prefix = prefix
        self.buf = memoryview(bytearray(MIB))
        self.seq = 0

    def _ident(self, kind: str, size: int) -> str:
        """A fresh identifier."""
        self.seq += 1
        return f"{self.prefix}/large/{kind}-{size_label(size).replace(' ', '')}-{self.seq}"

    def _timed(self, fn: Callable[[], bool], sample_rss: bool) -> dict[str, Any]:
        """Run fn once; wall seconds, CPU of client and server, peak server RSS growth."""
        procs = tree_of(self.server_pid) if self.server_pid else []
        srv0 = tree_cpu(procs)
        cli0 = time.process_time()
        machine_cpu = MachineCpu()
        with RssSampler(self.server_pid if sample_rss else None) as rss:
            t0 = time.perf_counter()
            ok = fn()
            seconds = time.perf_counter() - t0
        return {
            "ok": ok,
            "seconds": seconds,
            "client_cpu_s": time.process_time() - cli0,
            "server_cpu_s": tree_cpu(procs) - srv0 if procs else None,
            "server_rss_growth": rss.growth,
            "machine_busy_pct": machine_cpu.busy_pct(),
        }

    def put(self, ident: str, size: int) -> bool:
        """Raw PUT of size bytes."""
        status, answer = self.client.send_stream(
            "PUT", file_path(ident), blocks(size), size,
            {"Content-Type": "application/octet-stream"},
        )
        return status == 201 and f'"size":{size}'.encode() in answer.replace(b" ", b"")

    def post(self, ident: str, size: int) -> bool:
        """Multipart POST of size bytes."""
        ctype, head, tail, length = multipart_body(ident, size)
        status, answer = self.client.send_stream(
            "POST", "/data/file", multipart_chunks(head, size, tail), length,
            {"Content-Type": ctype},
        )
        return status == 201 and f'"size":{size}'.encode() in answer.replace(b" ", b"")

    def get(self, ident: str, size: int) -> bool:
        """GET of the object, read in 1 MiB chunks and discarded."""
        status, got = self.client.download(file_path(ident), self.buf)
        return status == 200 and got == size

    def delete(self, ident: str) -> None:
        """Delete, untimed."""
        self.client.request("DELETE", file_path(ident))

    def run_size(self, size: int, runs: int, sample_rss: bool, log: Callable[[str], None]) -> list[
        dict[str, Any]
    ]:
        """Median-of-runs throughput of PUT, POST and GET for one object size."""
        per_run = max(1, MIN_BYTES_PER_RUN // size)
        results: dict[str, list[dict[str, Any]]] = {"PUT raw": [], "POST multipart": [], "GET": []}
        for _ in range(runs):
            put_ids = [self._ident("put", size) for _ in range(per_run)]
            post_ids = [self._ident("post", size) for _ in range(per_run)]
            try:
                for op, fn, ids in (
                    ("PUT raw", self.put, put_ids),
                    ("POST multipart", self.post, post_ids),
                    ("GET", self.get, put_ids),
                ):
                    r = self._timed(
                        lambda fn=fn, ids=ids: all([fn(i, size) for i in ids]), sample_rss
                    )
                    r["bytes"] = size * per_run
                    r["objects"] = per_run
                    r["mb_per_s"] = r["bytes"] / r["seconds"] / 1e6
                    results[op].append(r)
                    log(f"  {size_label(size):>7} {op:<15} {r['mb_per_s']:8.1f} MB/s"
                        f"{'' if r['ok'] else '  (ERROR)'}")
            finally:
                for ident in put_ids + post_ids:
                    self.delete(ident)
        rows = []
        for op, rs in results.items():
            speeds = [r["mb_per_s"] for r in rs]
            growth = [r["server_rss_growth"] for r in rs if r["server_rss_growth"] is not None]
            srv = [r["server_cpu_s"] / r["seconds"] for r in rs if r["server_cpu_s"] is not None]
            rows.append({
                "size": size,
                "size_label": size_label(size),
                "op": op,
                "objects_per_run": per_run,
                "runs": rs,
                "errors": sum(not r["ok"] for r in rs),
                "median_mb_per_s": statistics.median(speeds),
                "min_mb_per_s": min(speeds),
                "max_mb_per_s": max(speeds),
                "median_client_cpu_pct": 100 * statistics.median(
                    r["client_cpu_s"] / r["seconds"] for r in rs),
                "median_server_cpu_pct": 100 * statistics.median(srv) if srv else None,
                "median_machine_busy_pct": statistics.median(r["machine_busy_pct"] for r in rs),
                "peak_server_rss_growth": max(growth) if growth else None,
            })
        return rows
