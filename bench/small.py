"""4 KiB objects: PUT, GET, HEAD, metadata GET and DELETE operations per second.

Concurrency c is served by p worker processes (spawned once per cell, before timing)
running c/p threads each, one keep-alive connection per thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from array import array
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

from bench.client import Client, file_path, metadata_path
from bench.server import MachineCpu, cpu_each, tree_of

OBJECT_SIZE = 4096
PHASES = ("PUT", "GET", "HEAD", "GET metadata", "DELETE")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


class Slot:
    """One client thread's connection, objects and the latencies of the current phase."""

    def __init__(self, host: str, port: int, token: str, prefix: str) -> None:
        """Connect lazily; identifiers start with prefix."""
        self.client = Client(host, port, token, timeout=60.0)
        self.prefix = prefix
        self.created: list[str] = []
        self.next_id = 0
        self.lat = array("d")
        self.errors = 0
        self.error_samples: list[str] = []
        self.start = 0.0
        self.end = 0.0

    def _one(self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None,
             want: int, want_len: int | None) -> bool:
        """One timed request; records latency, counts an error on a wrong answer."""
        t0 = time.perf_counter()
        try:
            status, data = self.client.request(method, path, body, headers)
        except Exception as exc:
            self.lat.append(time.perf_counter() - t0)
            self._error(f"{method} {type(exc).__name__}: {exc}")
            return False
        self.lat.append(time.perf_counter() - t0)
        if status != want or (want_len is not None and len(data) != want_len):
            self._error(f"{method} {status} {data[:120]!r}")
            return False
        return True

    def _error(self, text: str) -> None:
        """Count an error, keep the first few."""
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(text)

    def run(self, phase: str, max_ops: int, seconds: float, body: bytes) -> None:
        """Run one phase until max_ops or the time is up."""
        self.lat = array("d")
        self.errors = 0
        self.error_samples = []
        self.start = time.monotonic()
        deadline = self.start + seconds
        if phase == "PUT":
            headers = {"Content-Type": "application/octet-stream"}
            for _ in range(max_ops):
                if time.monotonic() >= deadline:
                    break
                ident = f"{self.prefix}/{self.next_id}"
                self.next_id += 1
                if self._one("PUT", file_path(ident), body, headers, 201, None):
                    self.created.append(ident)
        elif phase == "DELETE":
            done = 0
            for ident in self.created[:max_ops]:
                if time.monotonic() >= deadline:
                    break
                self._one("DELETE", file_path(ident), None, None, 200, None)
                done += 1
            self.created = self.created[done:]
        elif self.created:
            method = "HEAD" if phase == "HEAD" else "GET"
            want_len = {"GET": OBJECT_SIZE, "HEAD": 0}.get(phase)
            for n in range(max_ops):
                if time.monotonic() >= deadline:
                    break
                ident = self.created[n % len(self.created)]
                path = metadata_path(ident) if phase == "GET metadata" else file_path(ident)
                self._one(method, path, None, None, 200, want_len)
        self.end = time.monotonic()

    def cleanup(self) -> None:
        """Delete what is left, untimed, and close."""
        for ident in self.created:
            try:
                self.client.request("DELETE", file_path(ident))
            except Exception:  # noqa: S112 - best effort
                continue
        self.created = []
        self.client.close()


def worker(pipe: Connection, host: str, port: int, token: str, prefix: str, first: int,
           threads: int) -> None:
    """Worker process: run phases on command, send back latencies and counts."""
    body = os.urandom(OBJECT_SIZE)
    slots = [Slot(host, port, token, f"{prefix}/t{first + i}") for i in range(threads)]
    for s in slots:
        s.client.connection()
    pipe.send("ready")
    while True:
        msg = pipe.recv()
        if msg is None:
            break
        phase, max_ops, seconds = msg
        if phase == "cleanup":
            for s in slots:
                s.cleanup()
            pipe.send("clean")
            continue
        cpu0 = time.process_time()
        ts = [threading.Thread(target=s.run, args=(phase, max_ops, seconds, body))
              for s in slots]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        pipe.send({
            "lat": [s.lat.tobytes() for s in slots],
            "errors": sum(s.errors for s in slots),
            "error_samples": [e for s in slots for e in s.error_samples][:3],
            "start": min(s.start for s in slots),
            "end": max(s.end for s in slots),
            "client_cpu_s": time.process_time() - cpu0,
            "reconnects": sum(s.client.reconnects for s in slots),
        })
    pipe.close()


def run_cell(host: str, port: int, token: str, prefix: str, concurrency: int,
             max_processes: int, max_ops: int, seconds: float, server_pid: int | None,
             log: Any) -> list[dict[str, Any]]:
    """All phases at one concurrency; one result row per phase."""
    processes = max(1, min(max_processes, concurrency))
    per_proc = [concurrency // processes + (i < concurrency % processes)
                for i in range(processes)]
    ctx = get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    first = 0
    for threads in per_proc:
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=worker, args=(theirs, host, port, token,
                                             f"{prefix}/small/c{concurrency}", first, threads))
        p.start()
        theirs.close()
        pipes.append(ours)
        procs.append(p)
        first += threads
    rows = []
    server_procs = tree_of(server_pid) if server_pid else []
    try:
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("worker failed to start")
        per_thread_ops = -(-max_ops // concurrency)
        for phase in PHASES:
            srv0 = cpu_each(server_procs)
            machine_cpu = MachineCpu()
            for pipe in pipes:
                pipe.send((phase, per_thread_ops, seconds))
            answers = [pipe.recv() for pipe in pipes]
            busy = machine_cpu.busy_pct()
            srv_each = [b - a for a, b in zip(srv0, cpu_each(server_procs), strict=True)]
            srv_cpu = sum(srv_each) if server_procs else None
            lat: list[float] = []
            for a in answers:
                for raw in a["lat"]:
                    arr = array("d")
                    arr.frombytes(raw)
                    lat.extend(arr)
            lat.sort()
            wall = max(a["end"] for a in answers) - min(a["start"] for a in answers)
            ops = len(lat)
            errors = sum(a["errors"] for a in answers)
            row = {
                "concurrency": concurrency,
                "processes": processes,
                "threads_per_process": per_proc,
                "op": phase,
                "ops": ops,
                "errors": errors,
                "error_samples": [e for a in answers for e in a["error_samples"]][:3],
                "reconnects": sum(a["reconnects"] for a in answers),
                "seconds": wall,
                "ops_per_s": ops / wall if wall > 0 else 0.0,
                "p50_ms": 1000 * percentile(lat, 50),
                "p99_ms": 1000 * percentile(lat, 99),
                "max_ms": 1000 * lat[-1] if lat else float("nan"),
                "client_cpu_pct": 100 * sum(a["client_cpu_s"] for a in answers) / wall
                if wall > 0 else None,
                "server_cpu_pct": 100 * srv_cpu / wall if srv_cpu is not None and wall > 0
                else None,
                "machine_busy_pct": busy,
                # Gunicorn master first, then each worker: shows an uneven spread.
                "server_cpu_pct_by_process": [round(100 * c / wall, 1) for c in srv_each]
                if server_procs and wall > 0 else None,
            }
            rows.append(row)
            log(f"  c={concurrency:<3} {phase:<13} {row['ops']:>6} ops {row['ops_per_s']:8.1f}/s"
                f"  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
                f"  errors {errors}  server CPU % by process {row['server_cpu_pct_by_process']}")
        for pipe in pipes:
            pipe.send(("cleanup", 0, 0.0))
        for pipe in pipes:
            pipe.recv()
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    return rows
