"""End-to-end fixtures: a real `mos serve` on a free port, logins, data and memory probes."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import pytest
import requests

from mos.app import open_stores
from mos.config import Settings, load_settings
from mos.stores.base import Leftover

MIB = 1024 * 1024
GIB = 1024 * MIB
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PASSWORD = "correct horse battery"
# Cheap argon2id parameters keep logins fast; production defaults are tested elsewhere.
FAST_HASH = {
    "MOS_ARGON2_TIME_COST": "1",
    "MOS_ARGON2_MEMORY_KIB": "256",
    "MOS_ARGON2_PARALLELISM": "1",
}
HTTP_TIMEOUT = (10.0, 120.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env() -> dict[str, str]:
    """The environment of a server or fsck: no stray MOS_* settings, fast password hashing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOS_")}
    env.update(FAST_HASH)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pattern_chunks(size: int, seed: int) -> Iterator[bytes]:
    """Deterministic bytes: one random 1 MiB block per seed, each copy stamped with its index."""
    block = random.Random(seed).randbytes(MIB)
    sent = 0
    index = 0
    while sent < size:
        piece = struct.pack(">QQ", seed, index) + block[16:]
        n = min(MIB, size - sent)
        yield piece if n == MIB else piece[:n]
        sent += n
        index += 1


def pattern_bytes(size: int, seed: int) -> bytes:
    """The whole pattern in memory; only for small sizes."""
    return b"".join(pattern_chunks(size, seed))


def pattern_sha256(size: int, seed: int) -> str:
    """SHA-256 of the pattern, computed without keeping it."""
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size, seed):
        digest.update(chunk)
    return digest.hexdigest()


class Payload:
    """A sized, streamed body: prefix, `size` pattern bytes, suffix; hashes the pattern sent."""

    def __init__(self, size: int, seed: int, prefix: bytes = b"", suffix: bytes = b"") -> None:
        self.size = size
        self.seed = seed
        self.prefix = prefix
        self.suffix = suffix
        self._digest = hashlib.sha256()
        self.sent = 0

    def __len__(self) -> int:
        """Content-Length of the whole body (requests uses it instead of chunked encoding)."""
        return len(self.prefix) + self.size + len(self.suffix)

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body in 1 MiB pieces, hashing the pattern part as it goes."""
        if self.prefix:
            yield self.prefix
        for chunk in pattern_chunks(self.size, self.seed):
            self._digest.update(chunk)
            self.sent += len(chunk)
            yield chunk
        if self.suffix:
            yield self.suffix

    @property
    def sha256(self) -> str:
        """SHA-256 of the pattern bytes; valid once the body has been sent in full."""
        assert self.sent == self.size, f"only {self.sent} of {self.size} bytes were sent"
        return self._digest.hexdigest()


def multipart_payload(
    size: int, seed: int, identifier: str, filename: str = "big.bin"
) -> tuple[Payload, str]:
    """A streamed multipart/form-data body (file_identifier, then file) and its Content-Type."""
    boundary = f"mos-e2e-{uuid.uuid4().hex}"
    prefix = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file_identifier"\r\n\r\n'
        f"{identifier}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    return (
        Payload(size, seed, prefix=prefix, suffix=suffix),
        f"multipart/form-data; boundary={boundary}",
    )


def download_digest(
    session: requests.Session, url: str, headers: dict[str, str]
) -> tuple[int, int, str]:
    """GET url streamed; (status, bytes received, SHA-256 of them)."""
    digest = hashlib.sha256()
    received = 0
    with session.get(url, headers=headers, stream=True, timeout=HTTP_TIMEOUT) as resp:
        for chunk in resp.iter_content(MIB):
            digest.update(chunk)
            received += len(chunk)
        return resp.status_code, received, digest.hexdigest()


@dataclass
class RawResponse:
    """A response read off a raw socket, and whatever stopped the sender."""

    status: int
    headers: dict[str, str]
    body: bytes
    send_error: BaseException | None = None

    def json(self) -> Any:
        """The body as JSON."""
        import json

        return json.loads(self.body)


def request_head(method: str, path: str, headers: dict[str, str], port: int) -> bytes:
    """The request line and headers of an HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RssSampler:
    """Sample the RSS of a process tree every `interval` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = tree_rss(pid)
        self.peak = self.baseline
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        # Bounded even if nobody stops it: at most an hour of samples.
        for _ in range(int(3600 / self.interval)):
            if self._stop.wait(self.interval):
                return
            rss = tree_rss(self.pid)
            self.samples += 1
            self.peak = max(self.peak, rss)

    @property
    def growth(self) -> int:
        """Peak RSS minus the RSS before sampling started, in bytes."""
        return self.peak - self.baseline

    def __enter__(self) -> RssSampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop sampling and take one last sample."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, tree_rss(self.pid))


def tree_rss(pid: int) -> int:
    """Sum of the resident set sizes of a process and all its descendants."""
    total = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


@dataclass
class MosServer:
    """One `mos serve` process group on 127.0.0.1, started and stopped by process id."""

    data_dir: Path
    log_path: Path
    workers: int = 2
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The Gunicorn master's process id (also its process group id)."""
        assert self.proc is not None, "the server is not started"
        return self.proc.pid

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return self.base_url + path

    def start(self) -> MosServer:
        """Start on a fresh free port and wait until /healthz answers."""
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "mos.cli", "serve",
            "--host", HOST, "--port", str(self.port),
            "--data-dir", str(self.data_dir), "--workers", str(self.workers),
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**server_env(), **self.extra_env}, start_new_session=True,
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"mos serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"mos serve did not answer /healthz in {START_TIMEOUT}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL it if it has not exited within STOP_TIMEOUT."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        # Workers orphaned by a dead master are still in the group: make sure none is left.
        self._signal_group(signal.SIGKILL)
        self._wait_group_gone()

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        assert self.proc is not None
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)
        self._wait_group_gone()

    def _wait_group_gone(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def restart(self) -> MosServer:
        """Start again on the same data dir (after stop or kill)."""
        self.stop()
        return self.start()

    def login(self, username: str = "alice", password: str = PASSWORD) -> dict[str, str]:
        """Register (if new) and log in; the Authorization header for the user."""
        reg = requests.post(
            self.url("/users/register"), json={"username": username, "password": password},
            timeout=HTTP_TIMEOUT,
        )
        assert reg.status_code in (201, 409), reg.text
        resp = requests.post(
            self.url("/users/login"), json={"username": username, "password": password},
            timeout=HTTP_TIMEOUT,
        )
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def list_identifiers(self, auth: dict[str, str]) -> list[str]:
        """The caller's identifiers (first page)."""
        resp = requests.get(self.url("/data/user_file"), headers=auth, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["file_identifiers"])

    @property
    def temp_dir(self) -> Path:
        """The file-system blob store's temp area."""
        return self.data_dir / "tmp"

    def settings(self) -> Settings:
        """The settings this server runs with, to open its stores from the test."""
        return load_settings({**FAST_HASH, "MOS_DATA_DIR": str(self.data_dir), **self.extra_env})

    def _leftovers(self, which: str) -> list[Leftover]:
        """Blobs or temp files as the server's own blob store sees them (disk or GridFS)."""
        meta, blobs = open_stores(self.settings(), prepare=False)
        try:
            found = blobs.iter_blobs() if which == "blobs" else blobs.iter_temp()
            return sorted(found, key=lambda leftover: leftover.name)
        finally:
            blobs.close()
            meta.close()

    def temp_bytes(self) -> int:
        """Bytes held by unfinished writes (temp files, or GridFS chunks without a file)."""
        return sum(t.size for t in self._leftovers("temp"))

    def temp_files(self) -> list[str]:
        """Names of the unfinished writes in the blob store."""
        return [t.name for t in self._leftovers("temp")]

    def blob_files(self) -> list[str]:
        """Names of every stored blob."""
        return [b.name for b in self._leftovers("blobs")]

    def fsck(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `python -m mos.cli fsck --data-dir <dir> <args>` and capture its output."""
        return subprocess.run(
            [sys.executable, "-m", "mos.cli", "fsck", "--data-dir", str(self.data_dir), *args],
            env={**server_env(), **self.extra_env}, capture_output=True, text=True,
            timeout=120, check=False,
        )

    def download(
        self, ident: str, auth: dict[str, str], session: requests.Session | None = None
    ) -> tuple[int, int, str]:
        """GET /data/file/<ident> streamed: (status, bytes received, their SHA-256)."""
        if session is not None:
            return download_digest(session, self.url(f"/data/file/{ident}"), auth)
        with requests.Session() as s:
            return download_digest(s, self.url(f"/data/file/{ident}"), auth)

    def sample_rss(self, interval: float = 0.05) -> RssSampler:
        """A sampler of the RSS of the master and all its children (use it as a context)."""
        return RssSampler(self.pid, interval)

    def connect(self, timeout: float = 30.0) -> socket.socket:
        """A raw TCP connection to the server."""
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def open_request(self, method: str, path: str, headers: dict[str, str]) -> socket.socket:
        """A raw connection on which the request line and headers are sent; the body is not."""
        sock = self.connect()
        try:
            sock.sendall(request_head(method, path, headers, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def raw_request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Iterable[bytes] = (),
        timeout: float = 60.0,
    ) -> RawResponse:
        """Send a request over a raw socket from a thread, and read the answer meanwhile.

        The server may answer (507, 413...) and close before the body is sent; a client that
        only reads after sending would see a broken pipe instead of the answer.
        """
        sock = self.connect(timeout)
        errors: list[BaseException] = []

        def send() -> None:
            try:
                sock.sendall(request_head(method, path, headers, self.port))
                for chunk in body:
                    sock.sendall(chunk)
            except OSError as exc:
                errors.append(exc)

        sender = threading.Thread(target=send, name="raw-sender", daemon=True)
        sender.start()
        try:
            resp = http.client.HTTPResponse(sock, method=method)
            resp.begin()
            data = resp.read()
            answer = RawResponse(resp.status, dict(resp.getheaders()), data)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            sender.join(timeout=timeout)
        assert not sender.is_alive(), "the sender thread did not finish"
        answer.send_error = errors[0] if errors else None
        return answer


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll predicate until it holds or timeout seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


ServerFactory = Callable[..., MosServer]


class Kit:
    """The helpers tests need, handed out by the `kit` fixture (tests never import conftest)."""

    MIB = MIB
    GIB = GIB
    TIMEOUT = HTTP_TIMEOUT

    @staticmethod
    def payload(size: int, seed: int) -> Payload:
        """A streamed body of `size` deterministic bytes."""
        return Payload(size, seed)

    @staticmethod
    def multipart(size: int, seed: int, identifier: str) -> tuple[Payload, str]:
        """A streamed multipart body with file_identifier and file, and its Content-Type."""
        return multipart_payload(size, seed, identifier)

    @staticmethod
    def pattern(size: int, seed: int) -> bytes:
        """Deterministic bytes held in memory (small sizes only)."""
        return pattern_bytes(size, seed)

    @staticmethod
    def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll predicate for at most timeout seconds."""
        return wait_until(predicate, timeout)


@pytest.fixture
def kit() -> Kit:
    """Data generators and polling helpers."""
    return Kit()


@pytest.fixture
def backend_settings(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """MOS_* variables selecting the backend: SQLite + disk, or MongoDB + GridFS."""
    if backend == "sqlite":
        return {}
    url = request.getfixturevalue("mongo_url")
    return {"MOS_METADATA_URL": url, "MOS_BLOB_STORE": "gridfs"}


@pytest.fixture
def server_factory(
    tmp_path: Path, backend_settings: dict[str, str]
) -> Iterator[ServerFactory]:
    """Start servers on demand, on the backend under test; each is stopped by pid in teardown."""
    started: list[MosServer] = []
    made_dirs: list[Path] = []

    def make(
        data_dir: Path | None = None, workers: int = 2, env: dict[str, str] | None = None
    ) -> MosServer:
        if data_dir is None:
            data_dir = tmp_path / f"data{len(started)}"
            made_dirs.append(data_dir)
        srv = MosServer(
            data_dir=data_dir, log_path=tmp_path / f"server{len(started)}.log", workers=workers,
            extra_env={**backend_settings, **(env or {})},
        )
        started.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in reversed(started):
            srv.stop()
        # Large blobs would otherwise stay in pytest's kept temp dirs for several runs.
        for d in made_dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(server_factory: ServerFactory) -> MosServer:
    """A running server on a fresh data dir."""
    return server_factory()


@pytest.fixture
def auth(server: MosServer) -> dict[str, str]:
    """The Authorization header of a fresh user on `server`."""
    return server.login("alice")
