"""SecantusDB (the MongoDB stand-in the tests use) on a free loopback port, for --mongo.

The tests' own launcher, so both start it the same way; `python -m bench` runs from the
repository root, where `tests` is importable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.mongo_server import SecantusServer

__all__ = ["SecantusServer", "database"]


@contextlib.contextmanager
def database(mongo_url: str | None, base: Path, name: str) -> Iterator[
        tuple[str, SecantusServer | None]]:
    """The URL of database `name`: on the real MongoDB given, or on a SecantusDB started
    under base (yielded too, so its CPU can be sampled) and stopped on leaving."""
    if mongo_url:
        yield mongo_url, None
        return
    db = SecantusServer(base / "secantus")
    db.start()
    try:
        yield db.uri + name, db
    finally:
        db.stop()
