"""Time large uploads against a running mos: python -m bench.upload_probe PORT MIB [put|post].

A small probe for A/B comparisons of the upload path (used in docs/benchmarks.md's
optimisation log): registers a throwaway user, then uploads MIB MiB three times by raw PUT or
multipart POST, streaming one random 1 MiB block, and prints MB/s (10^6 bytes/s) per upload.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator


def token(conn: http.client.HTTPConnection) -> str:
    """Register a throwaway user and log in."""
    creds = json.dumps({"username": "u" + uuid.uuid4().hex[:8], "password": "password1"})
    for path in ("/users/register", "/users/login"):
        conn.request("POST", path, creds, {"Content-Type": "application/json"})
        answer = conn.getresponse().read()
    return str(json.loads(answer)["access_token"])


def framed(head: bytes, middle: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    """head, then every piece of middle, then tail."""
    yield head
    yield from middle
    yield tail


def main(argv: list[str]) -> None:
    """Run the probe."""
    port, mib = int(argv[0]), int(argv[1])
    mode = argv[2] if len(argv) > 2 else "put"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    auth = f"Bearer {token(conn)}"
    block = os.urandom(1 << 20)

    def blocks() -> Iterator[bytes]:
        for _ in range(mib):
            yield block

    for run in range(3):
        started = time.perf_counter()
        if mode == "put":
            headers = {"Authorization": auth, "Content-Length": str(mib << 20)}
            conn.request("PUT", f"/data/file/probe{run}", blocks(), headers)
        else:
            b = "probe-boundary"
            head = (f'--{b}\r\nContent-Disposition: form-data; name="file_identifier"\r\n\r\n'
                    f'm{run}\r\n--{b}\r\nContent-Disposition: form-data; name="file"; '
                    'filename="x"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
            tail = f"\r\n--{b}--\r\n".encode()

            headers = {"Authorization": auth, "Content-Type": f"multipart/form-data; boundary={b}",
                       "Content-Length": str(len(head) + len(tail) + (mib << 20))}
            conn.request("POST", "/data/file", framed(head, blocks(), tail), headers)
        resp = conn.getresponse()
        resp.read()
        seconds = time.perf_counter() - started
        print(f"{mode} {resp.status} {mib * 1.048576 / seconds:.0f} MB/s")


if __name__ == "__main__":
    main(sys.argv[1:])
