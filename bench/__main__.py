"""Command line: python -m bench --url http://127.0.0.1:5000 (or --start-server);
python -m bench compare [--quick] [--mongo] [--json PATH] for mos next to nginx, a bare
Flask app and dd."""

from __future__ import annotations

import argparse
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.client import Client, new_user, split_url
from bench.large import GIB, MIB, LargeBench
from bench.report import busy_before, machine, render, write_json
from bench.server import ManagedServer, summarize_log, tree_of
from bench.small import run_cell

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Upload/download MB/s for large objects and 4 KiB ops/s with latencies.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running server, e.g. http://127.0.0.1:5000")
    where.add_argument("--start-server", action="store_true",
                       help="start `mos serve` on a free 127.0.0.1 port with a temporary data"
                       " dir, and stop it at the end")
    p.add_argument("--workers", type=int, help="Gunicorn workers (with --start-server)")
    p.add_argument("--threads", type=int, help="threads per worker (with --start-server)")
    p.add_argument("--data-root", type=Path,
                   help="parent of the temporary data dir (with --start-server; default: $TMPDIR)")
    p.add_argument("--data-dir", type=Path,
                   help="the running server's data dir, only to report its file system")
    p.add_argument("--server-pid", type=int,
                   help="the running server's master pid, to sample its RSS and CPU")
    p.add_argument("--quick", action="store_true",
                   help="skip 1 GiB objects and shorten the 4 KiB cells")
    p.add_argument("--runs", type=int, default=3, help="runs per large-object measurement")
    p.add_argument("--small-ops", type=int, help="max ops per 4 KiB cell (default 20000)")
    p.add_argument("--small-seconds", type=float, help="max seconds per 4 KiB cell (default 10)")
    p.add_argument("--concurrency", default="1,16", help="comma-separated (default 1,16)")
    p.add_argument("--client-processes", type=int, default=4,
                   help="max client processes per 4 KiB cell (default 4)")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--skip-small", action="store_true")
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json",
                   help="where to write the results (default bench/results/latest.json)")
    p.add_argument("--server-log", type=Path, default=RESULTS / "server.log",
                   help="the started server's log (default bench/results/server.log)")
    args = p.parse_args(argv)
    if args.small_ops is None:
        args.small_ops = 2000 if args.quick else 20000
    if args.small_seconds is None:
        args.small_seconds = 3.0 if args.quick else 10.0
    return args


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace, url: str, pid: int | None, data_dir: Path | None,
        server: dict[str, Any]) -> dict[str, Any]:
    """Measure everything against url."""
    host, port = split_url(url)
    sizes = [MIB, 64 * MIB] + ([] if args.quick else [GIB])
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": shlex.join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
        "url": url,
        "machine": machine(data_dir),
        "server": server,
        "settings": {"runs": args.runs, "sizes": sizes, "small_ops": args.small_ops,
                     "small_seconds": args.small_seconds,
                     "concurrency": [int(c) for c in args.concurrency.split(",")],
                     "client_processes": args.client_processes},
        "large": [],
        "small": [],
    }
    result["machine_busy_before_pct"] = busy = busy_before()
    if busy > 20:
        log(f"bench: warning: the machine is {busy:.0f}% busy before the run;"
            " figures will be low and noisy")
    username, token = new_user(host, port)
    log(f"bench: user {username} on {url}")
    prefix = "bench-" + secrets.token_hex(4)
    if not args.skip_large:
        client = Client(host, port, token)
        bench = LargeBench(client, pid, prefix)
        try:
            for size in sizes:
                result["large"] += bench.run_size(size, args.runs, pid is not None, log)
        finally:
            client.close()
    if not args.skip_small:
        for c in result["settings"]["concurrency"]:
            result["small"] += run_cell(host, port, token, prefix, c, args.client_processes,
                                        args.small_ops, args.small_seconds, pid, log)
    result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON (or `compare`: see bench/compare.py)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        from bench.compare import main as compare

        return compare(argv[1:])
    if argv[:1] == ["profile"]:
        from bench.profile import main as profile

        return profile(argv[1:])
    args = parse_args(argv)
    t0 = time.monotonic()
    if args.url:
        server = {"description": f"already running at {args.url}", "started_by_bench": False}
        result = run(args, args.url, args.server_pid, args.data_dir, server)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="mos-bench-", dir=args.data_root))
        managed = ManagedServer(data_dir, args.server_log, args.workers, args.threads)
        try:
            managed.start()
            procs = tree_of(managed.proc.pid) if managed.proc else []
            server = {
                "started_by_bench": True,
                "argv": managed.command(),
                "log": str(args.server_log),
                "gunicorn_workers": len(procs) - 1,
                "description": f"mos serve started by bench ({len(procs) - 1} Gunicorn workers,"
                f" threads {args.threads or 'default'}), data dir {data_dir}",
            }
            pid = managed.proc.pid if managed.proc else None
            result = run(args, managed.url, pid, data_dir, server)
        finally:
            managed.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
        server["log_summary"] = summarize_log(args.server_log)
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    write_json(result, args.json)
    print(render(result))
    log(f"bench: results written to {args.json} in {result['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
