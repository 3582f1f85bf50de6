"""Start and stop a `mos serve` for the benchmark; sample its memory and CPU with psutil."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedServer:
    """A `mos serve` in its own session, stopped by process group id."""

    def __init__(
        self, data_dir: Path, log_path: Path, workers: int | None, threads: int | None,
        env: dict[str, str] | None = None, port: int | None = None, append_log: bool = False,
    ) -> None:
        """Remember how to start it; start() does the work. env: extra MOS_* variables."""
        self.data_dir = data_dir
        self.env = env or {}
        self.append_log = append_log
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The argv that starts the server."""
        cmd = [
            sys.executable, "-m", "mos.cli", "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir),
        ]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until /healthz answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab" if self.append_log else "wb")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"bench: mos serve exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    self._wait_for_workers()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"bench: mos serve did not become healthy in {timeout:g}s")

    def _wait_for_workers(self, timeout: float = 20.0) -> None:
        """Wait until every Gunicorn worker has booted, so they all serve from the start."""
        want = self.workers or (os.cpu_count() or 1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.process_tree()) >= want + 1:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def process_tree(self) -> list[psutil.Process]:
        """The Gunicorn master and its workers."""
        if self.proc is None:
            return []
        return tree_of(self.proc.pid)


def tree_of(pid: int) -> list[psutil.Process]:
    """A process and all its descendants; empty if it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(procs: list[psutil.Process]) -> int:
    """Sum of resident set sizes, bytes (processes that vanished count 0)."""
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def cpu_each(procs: list[psutil.Process]) -> list[float]:
    """User + system CPU seconds of each process (0 for one that vanished)."""
    out = []
    for p in procs:
        try:
            t = p.cpu_times()
            out.append(t.user + t.system)
        except psutil.Error:
            out.append(0.0)
    return out


class MachineCpu:
    """Share of all CPUs that was busy (not idle or iowait) between start and stop."""

    def __init__(self) -> None:
        """Take the first reading."""
        self.t0 = psutil.cpu_times()

    def busy_pct(self) -> float:
        """Busy share since construction, percent of all CPUs."""
        t1 = psutil.cpu_times()
        total = sum(t1) - sum(self.t0)
        idle = (t1.idle - self.t0.idle) + (
            getattr(t1, "iowait", 0.0) - getattr(self.t0, "iowait", 0.0))
        return 100 * (1 - idle / total) if total > 0 else 0.0


def tree_cpu(procs: list[psutil.Process]) -> float:
    """Sum of user + system CPU seconds."""
    return sum(cpu_each(procs))


class RssSampler:
    """Samples the summed RSS of a process tree in a thread; reports peak growth."""

    def __init__(self, pid: int | None, interval: float = 0.05) -> None:
        """Sample the tree of pid (nothing if None) every interval seconds."""
        self.procs = tree_of(pid) if pid else []
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        """Take the baseline and start sampling."""
        if self.procs:
            self.baseline = self.peak = tree_rss(self.procs)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        """Sampling loop."""
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self.procs))

    def __exit__(self, *exc: object) -> None:
        """Stop sampling and take one last sample."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, tree_rss(self.procs))

    @property
    def growth(self) -> int | None:
        """Peak minus baseline, bytes; None without a known server pid."""
        return self.peak - self.baseline if self.procs else None


_STATUS = re.compile(rb'" (\d{3}) ')


def summarize_log(path: Path) -> dict[str, Any]:
    """Count access-log statuses by class and error lines in the server's log."""
    classes: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    samples: list[str] = []
    if not path.exists():
        return {}
    with path.open("rb") as f:
        for line in f:
            m = _STATUS.search(line)
            if m:
                classes[m.group(1)[:1].decode() + "xx"] += 1
                if m.group(1).startswith(b"5") and len(samples) < 5:
                    samples.append(line.decode("utf-8", "replace").rstrip())
                continue
            for word in ("Traceback", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT", "[WARNING]"):
                if word.encode() in line:
                    problems[word] += 1
                    if len(samples) < 5:
                        samples.append(line.decode("utf-8", "replace").rstrip())
    return {"status_classes": dict(classes), "problem_lines": dict(problems),
            "samples": samples}
