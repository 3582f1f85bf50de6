"""Machine description, the text table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

MIB = 1024 * 1024


def fs_type(path: Path) -> str:
    """File system type and mount point of path, from /proc/mounts."""
    target = os.path.realpath(path)
    best = ("", "unknown")
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0]):
                    best = (mount, fields[2])
    except OSError:
        pass
    return f"{best[1]} (mounted on {best[0] or '?'})"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(dist: str) -> str | None:
    """Installed version of a distribution, if any."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(repo: Path) -> str | None:
    """HEAD of the repository the benchmark lives in, '+dirty' if it has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine(data_dir: Path | None) -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_model": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "data_dir": str(data_dir) if data_dir else None,
        "data_dir_fs": fs_type(data_dir) if data_dir else "unknown (server not started by bench)",
        "versions": {d: version_of(d) for d in
                     ("min-object-storage", "gunicorn", "flask", "werkzeug", "apiflask")},
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
    }


def _num(v: float | None, fmt: str) -> str:
    """Format a number, '-' for None."""
    return "-" if v is None else format(v, fmt)


def others(busy_pct: float | None, server: float | None, client: float | None) -> float | None:
    """CPU used by neither the server nor the bench client, % of one core (kernel included)."""
    if busy_pct is None or server is None or client is None:
        return None
    return max(0.0, busy_pct * (os.cpu_count() or 1) - server - client)


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    """A plain-text table with a Markdown-compatible layout."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        """One row."""
        return "| " + " | ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ) + " |"

    sep = "|" + "|".join(
        "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
    ) + "|"
    return [line(headers), sep, *(line(r) for r in rows)]


def render(result: dict[str, Any]) -> str:
    """The human-readable report."""
    m = result["machine"]
    out = [
        f"min-object-storage benchmark, {result['started_at']}",
        f"machine: {m['logical_cpus']} logical CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM,"
        f" data dir on {m['data_dir_fs']}, Python {m['python']}, {m['os']}",
        f"server: {result['server']['description']}",
        f"command: {result['command']}",
    ]
    busy = result.get("machine_busy_before_pct")
    if busy is not None:
        out.append(f"machine busy before the run: {busy:.0f}% of all CPUs")
    out.append("")
    if result.get("large"):
        out.append("Large objects (MB/s = 10^6 bytes/s; median of runs, min-max;"
                   " CPU % = % of one core)")
        rows = [[
            r["size_label"], r["op"], str(len(r["runs"])) + (
                f"x{r['objects_per_run']}" if r["objects_per_run"] > 1 else ""),
            _num(r["median_mb_per_s"], ".1f"),
            f"{r['min_mb_per_s']:.1f}-{r['max_mb_per_s']:.1f}",
            _num(r["median_server_cpu_pct"], ".0f"), _num(r["median_client_cpu_pct"], ".0f"),
            _num(others(r["median_machine_busy_pct"], r["median_server_cpu_pct"],
                        r["median_client_cpu_pct"]), ".0f"),
            _num(None if r["peak_server_rss_growth"] is None
                 else r["peak_server_rss_growth"] / MIB, "+.1f"),
            str(r["errors"]),
        ] for r in result["large"]]
        out += _table(["size", "operation", "runs", "MB/s", "min-max", "server CPU %",
                       "client CPU %", "others CPU %", "server RSS peak MiB", "errors"],
                      rows, {2, 3, 4, 5, 6, 7, 8, 9})
        out.append("")
    if result.get("small"):
        out.append(f"4 KiB objects (each cell: up to {result['settings']['small_ops']} ops"
                   f" or {result['settings']['small_seconds']:g} s, whichever first)")
        rows = [[
            str(r["concurrency"]), f"{r['processes']}x{max(r['threads_per_process'])}",
            r["op"], str(r["ops"]), str(r["errors"]), f"{r['ops_per_s']:.0f}",
            f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
            _num(r["server_cpu_pct"], ".0f"), _num(r["client_cpu_pct"], ".0f"),
            _num(others(r["machine_busy_pct"], r["server_cpu_pct"], r["client_cpu_pct"]),
                 ".0f"),
        ] for r in result["small"]]
        out += _table(["conc.", "procs x threads", "operation", "ops", "errors", "ops/s",
                       "p50 ms", "p99 ms", "server CPU %", "client CPU %", "others CPU %"],
                      rows, {0, 3, 4, 5, 6, 7, 8, 9, 10})
        out.append("")
    log = result["server"].get("log_summary")
    if log:
        out.append(f"server log ({result['server']['log']}): statuses {log['status_classes']},"
                   f" problem lines {log['problem_lines'] or 'none'}")
        out += ["  " + s for s in log["samples"]]
    return "\n".join(out)


def busy_before(seconds: float = 2.0) -> float:
    """How busy the machine is before the run starts, % of all CPUs."""
    return float(psutil.cpu_percent(interval=seconds))


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the results as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
