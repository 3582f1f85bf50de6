"""python -m bench.multipart_cost [MIB]: CPU of parsing a large multipart upload, two parsers.

Feeds one `file` part of MIB MiB (default 1024), in 1 MiB pieces as the server receives them,
through Werkzeug's sans-IO MultipartDecoder (what mos used) and python-multipart's
MultipartParser (what it uses now), three times each, and prints seconds per GiB. Nothing is
written or hashed: only the parsing is timed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from python_multipart.multipart import MultipartParser
from werkzeug.sansio.multipart import Data, Epilogue, MultipartDecoder, NeedData

BOUNDARY = b"benchboundary7MA4YWxkTrZu0gW"
MIB = 1024 * 1024


def pieces(mib: int) -> list[bytes]:
    """The body in 1 MiB pieces (one random block repeated), with the part head and the end."""
    block = os.urandom(MIB)
    head = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="x"'
            b"\r\nContent-Type: application/octet-stream\r\n\r\n")
    return [head + block[len(head):], *[block] * (mib - 1), b"\r\n--" + BOUNDARY + b"--\r\n"]


def werkzeug(body: list[bytes]) -> int:
    """Bytes of file data Werkzeug's decoder hands over."""
    decoder = MultipartDecoder(BOUNDARY, max_form_memory_size=MIB + 64 * 1024)
    got = 0
    for piece in body:
        decoder.receive_data(piece)
        while not isinstance(event := decoder.next_event(), NeedData | Epilogue):
            if isinstance(event, Data):
                got += len(event.data)
    return got


def python_multipart(body: list[bytes]) -> int:
    """Bytes of file data python-multipart hands over (as views, as mos takes them)."""
    got = 0

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal got
        got += len(memoryview(data)[start:end])

    parser = MultipartParser(BOUNDARY, {"on_part_data": on_part_data})
    for piece in body:
        parser.write(piece)
    return got


def main(argv: list[str]) -> int:
    """Time both parsers, alternating."""
    mib = int(argv[0]) if argv else 1024
    body = pieces(mib)
    size = sum(len(p) for p in body)
    parsers: dict[str, Callable[[list[bytes]], int]] = {
        "werkzeug MultipartDecoder": werkzeug, "python-multipart": python_multipart}
    for round_no in range(3):
        for name, parse in parsers.items():
            t0 = time.process_time()
            got = parse(body)
            seconds = time.process_time() - t0
            print(f"round {round_no + 1}: {name:26s} {seconds * 1024 / mib:6.3f} s CPU per GiB"
                  f" ({got} of {size} bytes are file data)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
