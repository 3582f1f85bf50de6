"""SecantusDB (the MongoDB stand-in the tests use) on a free loopback port, for --mongo.

The same start-up as tests/mongo_server.py (copied: bench imports nothing from tests/).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymongo
from pymongo.errors import PyMongoError

from bench.server import free_port


def secantusd_command() -> str:
    """The SecantusDB server command installed beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / "secantusd-py"
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if not found:
        raise SystemExit("bench: secantusd-py is not installed (pip install -e '.[test]')")
    return found


class SecantusServer:
    """One SecantusDB process on 127.0.0.1, stopped by its process id."""

    def __init__(self, storage: Path) -> None:
        """Keep its files under storage."""
        self.storage = storage
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = storage.parent / f"{storage.name}.log"

    @property
    def uri(self) -> str:
        """The server's address, without a database."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers ping."""
        self.storage.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [secantusd_command(), "--host", "127.0.0.1", "--port", str(self.port),
                 "--storage-path", str(self.storage), "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: SecantusDB exited at start; see {self.log_path}")
            if self.answers():
                return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"bench: SecantusDB did not answer within {timeout:.0f} s")

    def answers(self) -> bool:
        """Whether the server answers a ping now."""
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the process group by its id; SIGKILL if it does not go in time."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
