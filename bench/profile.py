"""python -m bench profile [--op get|put|upload] [--seconds S]: where a request's time goes.

Starts `mos serve` with one worker on a free loopback port, drives one load at it (4 KiB GET
or PUT at concurrency 16 with wrk, or 256 MiB raw uploads), records the worker with py-spy
(`pip install -e '.[bench]'`; sampling slows the worker, so the rates it prints are far
below the benchmark's and only the shares matter), and writes a flame graph (SVG) and the
folded stacks to bench/results/profile-<op>.*; prints the functions with the most samples of
their own. The evidence behind docs/benchmarks.md's optimisation log can be redone with it.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.client import new_user
from bench.server import ManagedServer
from bench.wrkload import Load, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"


def top_frames(folded: Path, count: int = 20) -> list[tuple[int, str]]:
    """(samples, function) of the frames where most samples end, from py-spy's raw output."""
    totals: collections.Counter[str] = collections.Counter()
    for line in folded.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            totals[stack.split(";")[-1].split(" (")[0]] += int(samples)
    return [(n, name) for name, n in totals.most_common(count)]


def upload_load(port: int, token: str, seconds: float) -> None:
    """Raw 256 MiB PUTs, one after another, for about `seconds`."""
    import http.client

    block = os.urandom(1 << 20)
    deadline = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    n = 0
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {token}", "Content-Length": str(256 << 20)}
        conn.request("PUT", f"/data/file/profile{n}", iter([block] * 256), headers)
        conn.getresponse().read()
        n += 1


def main(argv: list[str]) -> int:
    """Run one profile."""
    p = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__)
    p.add_argument("--op", choices=["get", "put", "upload"], default="get")
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args(argv)
    # The venv's own bin first: `.venv/bin/python -m bench profile` works without activation.
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                      f"{os.environ.get('PATH', '')}")
    if spy is None:
        raise SystemExit("bench: py-spy is missing: pip install -e '.[bench]'")
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="mos-profile-"))
    server = ManagedServer(base / "data", RESULTS / "profile-server.log", workers=1, threads=8)
    server.start()
    try:
        assert server.proc is not None
        worker = psutil.Process(server.proc.pid).children()[0].pid
        _user, token = new_user("127.0.0.1", server.port)
        folded = RESULTS / f"profile-{args.op}.txt"
        svg = RESULTS / f"profile-{args.op}.svg"
        spies = [
            subprocess.Popen([spy, "record", "-p", str(worker), "-d", str(int(args.seconds)),
                              "-f", fmt, "-o", str(out), "-r", "100", "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for fmt, out in (("raw", folded), ("flamegraph", svg))
        ]
        time.sleep(0.5)
        if args.op == "upload":
            load = threading.Thread(target=upload_load, args=(server.port, token, args.seconds))
            load.start()
            load.join()
        else:
            if args.op == "get":
                import http.client

                conn = http.client.HTTPConnection("127.0.0.1", server.port)
                conn.request("PUT", "/data/file/fixed", b"x" * 4096,
                             {"Authorization": f"Bearer {token}"})
                conn.getresponse().read()
                cell = Load(method="GET", mode="fixed", path_prefix="/data/file/fixed",
                            want_len=4096, token=token)
            else:
                cell = Load(method="PUT", mode="unique", path_prefix="/data/file/p-",
                            ok_status=(201,), body=True, token=token)
            result = run_wrk(server.url, cell, 16, args.seconds, base, server.proc.pid)
            print(f"{args.op}: {result['ops_per_s']:.0f} ops/s, p50 {result['p50_ms']:.2f} ms,"
                  f" p99 {result['p99_ms']:.2f} ms, errors {result['errors']}")
        for spy in spies:
            spy.wait(timeout=args.seconds + 60)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"flame graph: {svg}\nfolded stacks: {folded}\nframes with the most own samples:")
    for samples, name in top_frames(folded):
        print(f"  {samples:6d}  {name}")
    return 0
