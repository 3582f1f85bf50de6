"""A multi-process Python load for what wrk cannot send: HEAD (wrk waits for a HEAD body).

c connections are spread over min(4, c) spawned processes (threads inside), each with its
own keep-alive http.client connection; processes connect before the timed phase starts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from array import array
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

import psutil

from bench.client import Client
from bench.server import cpu_each, tree_of
from bench.small import percentile

MAX_PROCESSES = 4


def _thread(client: Client, method: str, paths: list[str], offset: int, deadline: float,
            want: int, out: dict[str, Any]) -> None:
    """Send requests until the deadline; latencies and errors into out."""
    lat = array("d")
    errors = 0
    sample = ""
    i = offset
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            status, _ = client.request(method, path)
            good = status == want
        except Exception as exc:
            status, good = 0, False
            sample = sample or f"{type(exc).__name__}: {exc}"
        lat.append(time.perf_counter() - t0)
        if not good:
            errors += 1
            sample = sample or f"status {status}"
    out.update(lat=lat.tobytes(), errors=errors, sample=sample)


def _worker(pipe: Connection, host: str, port: int, token: str | None, method: str,
            paths: list[str], first: int, threads: int, want: int) -> None:
    """One client process: connect, wait for go, run, report."""
    clients = [Client(host, port, token, timeout=60.0) for _ in range(threads)]
    for c in clients:
        c.connection()
    pipe.send("ready")
    seconds = pipe.recv()
    deadline = time.monotonic() + seconds
    outs: list[dict[str, Any]] = [{} for _ in clients]
    cpu0 = time.process_time()
    start = time.monotonic()
    ts = [threading.Thread(target=_thread, args=(c, method, paths, (first + k) * 7919,
                                                 deadline, want, outs[k]))
          for k, c in enumerate(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    pipe.send({"outs": outs, "start": start, "end": time.monotonic(),
               "cpu": time.process_time() - cpu0})
    for c in clients:
        c.close()


def run_python_load(host: str, port: int, token: str | None, method: str, paths: list[str],
                    connections: int, seconds: float, want: int,
                    server_pid: int | None) -> dict[str, Any]:
    """Run one cell; the same fields as bench.wrkload.run_wrk."""
    processes = max(1, min(MAX_PROCESSES, connections))
    per_proc = [connections // processes + (i < connections % processes)
                for i in range(processes)]
    ctx = get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    first = 0
    try:
        for threads in per_proc:
            ours, theirs = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(theirs, host, port, token, method, paths,
                                                  first, threads, want))
            p.start()
            theirs.close()
            pipes.append(ours)
            procs.append(p)
            first += threads
        for pipe in pipes:
            if pipe.recv() != "ready":
                raise RuntimeError("client process failed to start")
        server_procs = tree_of(server_pid) if server_pid else []
        srv0 = sum(cpu_each(server_procs))
        cpu0 = psutil.cpu_times()
        for pipe in pipes:
            pipe.send(seconds)
        answers = [pipe.recv() for pipe in pipes]
        srv_cpu = sum(cpu_each(server_procs)) - srv0
        cpu1 = psutil.cpu_times()
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
    lat: list[float] = []
    errors = 0
    sample = ""
    for a in answers:
        for o in a["outs"]:
            arr = array("d")
            arr.frombytes(o["lat"])
            lat.extend(arr)
            errors += o["errors"]
            sample = sample or o["sample"]
    lat.sort()
    wall = max(a["end"] for a in answers) - min(a["start"] for a in answers)
    total = sum(cpu1) - sum(cpu0)
    idle = (cpu1.idle - cpu0.idle) + (getattr(cpu1, "iowait", 0.0) - getattr(cpu0, "iowait", 0.0))
    with contextlib.suppress(ZeroDivisionError):
        busy = 100 * (1 - idle / total)
    return {
        "generator": f"python ({processes} processes x {max(per_proc)} threads)",
        "connections": connections,
        "seconds": wall,
        "ops": len(lat),
        "ops_per_s": len(lat) / wall if wall > 0 else 0.0,
        "p50_ms": 1000 * percentile(lat, 50),
        "p99_ms": 1000 * percentile(lat, 99),
        "errors": errors,
        "sample": sample,
        "server_cpu_pct": 100 * srv_cpu / wall if server_procs and wall > 0 else None,
        "client_cpu_pct": 100 * sum(a["cpu"] for a in answers) / wall if wall > 0 else None,
        "machine_busy_pct": busy if total > 0 else None,
    }
