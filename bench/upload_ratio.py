"""python -m bench.upload_ratio [MIB] [ROUNDS]: mos uploads ÷ nginx PUT, alternating, no more.

The upload rows of `bench compare` alone, for a quick reading of one object size: starts
`mos serve` (default settings) and nginx (as `bench compare` configures it) on free loopback
ports; each round times a raw PUT, a multipart POST and an nginx WebDAV PUT of MIB MiB
(default 64; at least 128 MiB per timed run, as in `bench compare`), in an order that rotates
from round to round, each after an untimed `sync`. Prints every round's MB/s, the medians,
each server's CPU seconds per object, and the ratios to nginx. Needs nginx (`apt-get install
nginx`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.client import new_user
from bench.compare import MIN_BYTES_PER_RUN, System, mos_post, mos_put, nginx_put
from bench.nginx import NginxServer, ensure_installed
from bench.server import ManagedServer, tree_cpu, tree_of

MIB = 1024 * 1024


def main(argv: list[str]) -> int:
    """Run the rounds and print the figures."""
    size = int(argv[0]) * MIB if argv else 64 * MIB
    rounds = int(argv[1]) if len(argv) > 1 else 6
    per_run = max(1, MIN_BYTES_PER_RUN // size)
    ensure_installed()
    base = Path(tempfile.mkdtemp(prefix="mos-upload-ratio-"))
    mos = System("mos", "mos", ManagedServer(base / "mos", base / "mos.log", None, None))
    nginx = System("nginx", "nginx", NginxServer(base / "nginx"))
    speeds: dict[str, list[float]] = {"PUT raw": [], "POST multipart": [], "nginx PUT": []}
    cpu: dict[str, list[float]] = {name: [] for name in speeds}
    try:
        for s in (mos, nginx):
            s.server.start()
        mos.username, mos.token = new_user(*mos.host_port)
        mc, nc = mos.client(), nginx.client()
        for r in range(rounds):
            ops: list[tuple[str, Callable[[int], bool], int | None]] = [
                ("PUT raw", lambda i, r=r: mos_put(mc, f"put-{r}-{i}", size), mos.pid),
                ("POST multipart", lambda i, r=r: mos_post(mc, f"post-{r}-{i}", size), mos.pid),
                ("nginx PUT", lambda i, r=r: nginx_put(nc, f"/n-{r}-{i}", size), nginx.pid),
            ]
            k = r % len(ops)
            for name, fn, pid in ops[k:] + ops[:k]:
                os.sync()
                procs = tree_of(pid) if pid else []
                cpu0 = tree_cpu(procs)
                t0 = time.perf_counter()
                ok = all([fn(i) for i in range(per_run)])
                seconds = time.perf_counter() - t0
                if not ok:
                    raise SystemExit(f"bench: {name} failed in round {r}")
                speeds[name].append(size * per_run / seconds / 1e6)
                cpu[name].append((tree_cpu(procs) - cpu0) / per_run)
            for i in range(per_run):
                mc.request("DELETE", f"/data/file/put-{r}-{i}")
                mc.request("DELETE", f"/data/file/post-{r}-{i}")
                nc.request("DELETE", f"/n-{r}-{i}")
        mc.close()
        nc.close()
        print(f"{size // MIB} MiB uploads, {per_run} per timed run, {rounds} rounds"
              " (MB/s = 10^6 bytes/s)")
        for name, got in speeds.items():
            print(f"  {name:<15} {' '.join(f'{x:6.0f}' for x in got)}  median"
                  f" {statistics.median(got):6.0f} MB/s, server CPU"
                  f" {statistics.median(cpu[name]):.3f} s per object")
        limit = statistics.median(speeds["nginx PUT"])
        for name in ("PUT raw", "POST multipart"):
            print(f"  mos {name} / nginx PUT: {statistics.median(speeds[name]) / limit:.2f}")
    finally:
        for s in (mos, nginx):
            with contextlib.suppress(Exception):
                s.server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
