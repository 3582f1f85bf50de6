"""SecantusDB (the MongoDB stand-in the tests use) on a free loopback port, for --mongo.

The tests' own launcher, so both start it the same way; `python -m bench` runs from the
repository root, where `tests` is importable.
"""

from __future__ import annotations

from tests.mongo_server import SecantusServer

__all__ = ["SecantusServer"]
