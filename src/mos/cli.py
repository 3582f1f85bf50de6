"""The `mos` command: serve, fsck."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from mos.config import ConfigError, Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="mos", description="min-object-storage")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service under Gunicorn")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--threads", type=int)
    serve.add_argument("--data-dir")

    check = sub.add_parser("fsck", help="find orphan blobs, temp files and missing blobs")
    check.add_argument("--data-dir")
    check.add_argument("--repair", action="store_true", help="remove orphans and temp files")
    check.add_argument("--verify", action="store_true", help="re-hash every blob")
    check.add_argument(
        "--min-age", type=float, default=3600.0,
        help="leave files younger than this many seconds alone (uploads may be in flight);"
        " use 0 when the server is stopped",
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            settings = load_settings(
                host=args.host, port=args.port, workers=args.workers, threads=args.threads,
                data_dir=args.data_dir,
            )
            return serve_forever(settings)
        settings = load_settings(data_dir=args.data_dir)
        return run_fsck(settings, repair=args.repair, verify=args.verify, min_age=args.min_age)
    except ConfigError as exc:
        print(f"mos: {exc}", file=sys.stderr)
        return 2


def serve_forever(settings: Settings) -> int:
    """Run Gunicorn with threaded workers on these settings."""
    from mos.app import build_services
    from mos.serving import MosApplication

    # Files the service creates (database, blobs, secret) are for its own user only.
    os.umask(0o077)
    # Fail fast, in the master, with one line: address, stores, data dir and secret must work.
    check_can_listen(settings.host, settings.port)
    build_services(settings).close()
    MosApplication(settings).run()
    return 0


def check_can_listen(host: str, port: int) -> None:
    """ConfigError unless host:port can be bound now (Gunicorn would retry and log at length)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run_fsck(settings: Settings, *, repair: bool, verify: bool, min_age: float) -> int:
    """Print what fsck finds; exit 1 if anything is wrong and was not repaired."""
    from mos.app import open_stores
    from mos.services.fsck import fsck

    os.umask(0o077)

    meta, blobs = open_stores(settings)
    try:
        report = fsck(meta, blobs, repair=repair, verify=verify, min_age=min_age)
    finally:
        blobs.close()
        meta.close()
    for blob in report.orphan_blobs:
        print(f"orphan blob {blob.name} ({blob.size} bytes)")
    for temp in report.temp_files:
        print(f"temp file {temp.name} ({temp.size} bytes)")
    for blob_id, _owner, identifier in report.missing_blobs:
        print(f"missing blob {blob_id} of object {identifier!r}")
    for blob_id, _owner, identifier in report.corrupt_blobs:
        print(f"corrupt blob {blob_id} of object {identifier!r}")
    print(
        f"fsck: {len(report.orphan_blobs)} orphan blobs, {len(report.temp_files)} temp files,"
        f" {len(report.missing_blobs)} missing blobs, {len(report.corrupt_blobs)} corrupt blobs,"
        f" {report.young_skipped} younger than {min_age:g}s skipped,"
        f" {report.removed} removed"
    )
    unrepaired = report.missing_blobs or report.corrupt_blobs or (
        not repair and (report.orphan_blobs or report.temp_files)
    )
    return 1 if unrepaired else 0


if __name__ == "__main__":
    sys.exit(main())
