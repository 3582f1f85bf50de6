"""A MongoDB for the tests: SecantusDB started on a free loopback port, or MOS_TEST_MONGODB_URI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymongo
from pymongo.errors import PyMongoError

REAL_MONGODB_VARIABLE = "MOS_TEST_MONGODB_URI"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(uri: str, name: str) -> str:
    """The URI with its database path set to name, options kept."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def secantusd_command() -> str:
    """The SecantusDB server command installed beside this Python, or on PATH."""
    beside = Path(sys.executable).parent / "secantusd-py"
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError(
            "secantusd-py is not installed: pip install -e '.[test]' brings SecantusDB, the"
            f" MongoDB stand-in; or set {REAL_MONGODB_VARIABLE} to a real MongoDB"
        )
    return found


class SecantusServer:
    """One SecantusDB process on 127.0.0.1, stopped by its process id."""

    def __init__(self, storage: Path, port: int | None = None) -> None:
        self.storage = storage
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = storage.parent / f"{storage.name}.log"

    @property
    def uri(self) -> str:
        """The server's address, without a database."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> SecantusServer:
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
                raise RuntimeError(f"SecantusDB exited at start:\n{self.log_tail()}")
            if self.answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SecantusDB did not answer within {timeout:.0f} s:\n{self.log_tail()}")

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

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process group by its id; SIGKILL if it does not go in time."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
