"""python -m bench.ab REF_A REF_B [--op put|get ...]: two commits of mos, alternating wrk rounds.

The before/after evidence of docs/benchmarks.md's optimisation log: each git ref is checked
out into a temporary worktree, each gets its own `mos serve` (2 workers x 8 threads, as the
default) on a free loopback port, and the chosen 4 KiB cells run against A, then B, then A...
so that drift of this shared machine hits both alike. Prints ops/s and p50/p99 per round and
the median per side. Needs git and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.client import new_user
from bench.server import ManagedServer
from bench.wrkload import Load, run_wrk

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def worktree(ref: str, base: Path) -> Iterator[Path]:
    """A detached checkout of ref under base, removed afterwards."""
    path = base / f"tree-{len(list(base.iterdir()))}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), ref],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                       check=False, capture_output=True)


def cell(op: str, token: str, port: int, round_no: int) -> Load:
    """The wrk load of one operation in one round (GET reads one prepared 4 KiB object)."""
    if op == "put":  # new identifiers every round: a repeated one would answer 409
        return Load(method="PUT", mode="unique", path_prefix=f"/data/file/ab-r{round_no}-",
                    ok_status=(201,), body=True, token=token)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("PUT", "/data/file/ab-fixed", b"x" * 4096, {"Authorization": f"Bearer {token}"})
    conn.getresponse().read()
    conn.close()
    return Load(method=op.upper(), mode="fixed", path_prefix="/data/file/ab-fixed",
                want_len=4096 if op == "get" else -1, token=token)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison."""
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    p.add_argument("ref_a")
    p.add_argument("ref_b", help="a git ref, or WORKTREE for the files as they are now")
    p.add_argument("--op", action="append", choices=["put", "get"],
                   help="4 KiB PUT or GET; default: both")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=16)
    args = p.parse_args(argv)
    ops = args.op or ["put", "get"]
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing (apt-get install wrk)")
    base = Path(tempfile.mkdtemp(prefix="mos-ab-"))
    trees = base / "trees"
    trees.mkdir()
    try:
        with contextlib.ExitStack() as stack:
            sources = {
                name: REPO if ref == "WORKTREE" else stack.enter_context(worktree(ref, trees))
                for name, ref in (("A", args.ref_a), ("B", args.ref_b))
            }
            servers = {}
            for name, tree in sources.items():
                server = ManagedServer(base / f"data-{name}", base / f"server-{name}.log",
                                       workers=None, threads=None,
                                       env={"PYTHONPATH": str(tree / "src")})
                server.start()
                stack.callback(server.stop)
                servers[name] = server
            tokens = {name: new_user("127.0.0.1", s.port)[1] for name, s in servers.items()}
            rates: dict[tuple[str, str], list[float]] = {}
            refs = {"A": args.ref_a, "B": args.ref_b}
            for r in range(args.rounds):
                for op in ops:
                    for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                        server = servers[name]
                        assert server.proc is not None
                        load = cell(op, tokens[name], server.port, r)
                        res = run_wrk(server.url, load, args.connections,
                                      args.seconds, base, server.proc.pid)
                        rates.setdefault((op, name), []).append(res["ops_per_s"])
                        print(f"round {r + 1} {op:4s} {name} ({refs[name]}):"
                              f" {res['ops_per_s']:8.1f} ops/s  p50 {res['p50_ms']:.2f} ms"
                              f"  p99 {res['p99_ms']:.2f} ms  errors {res['errors']}", flush=True)
            print(f"medians, c={args.connections}, {args.rounds} rounds of {args.seconds:g} s:")
            for op in ops:
                a, b = (statistics.median(rates[(op, n)]) for n in ("A", "B"))
                print(f"  {op:4s} A {a:8.1f}  B {b:8.1f} ops/s  B/A {b / a:.3f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
