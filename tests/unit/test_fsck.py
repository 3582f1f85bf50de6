"""fsck: orphans, temp files, missing and rotten blobs; repair removes only leftovers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from mos.services.fsck import fsck
from mos.services.objects import ObjectService, Upload
from mos.stores.filesystem import FileSystemBlobStore
from mos.stores.sqlite import SQLiteMetadataStore


def make_leftovers(
    objects: ObjectService, blobs: FileSystemBlobStore, owner: str
) -> dict[str, str]:
    """One good object, one orphan blob, one temp file, one row without bytes, one rotten."""
    good = objects.create(owner, Upload("good", "g", "text/plain", []), objects.write_blob([b"g"]))
    orphan = blobs.put([b"orphan"], 100)
    temp = blobs.temp_dir / f"{'e' * 32}.part"
    temp.write_bytes(b"partial")
    lost = objects.create(owner, Upload("lost", "l", "text/plain", []), objects.write_blob([b"l"]))
    blobs.path_of(lost.blob_id).unlink()
    rotten = objects.create(owner, Upload("rot", "r", "text/plain", []), objects.write_blob([b"r"]))
    blobs.path_of(rotten.blob_id).write_bytes(b"R")
    return {"good": good.blob_id, "orphan": orphan.blob_id, "lost": lost.blob_id,
            "rotten": rotten.blob_id}


def test_report_and_repair(
    objects: ObjectService, blobs: FileSystemBlobStore, meta: SQLiteMetadataStore
) -> None:
    """Everything is found; repair removes orphans and temp files, never referenced blobs."""
    owner = meta.create_user("alice", "h", datetime.now(UTC)).id
    ids = make_leftovers(objects, blobs, owner)
    young = fsck(meta, blobs)
    assert young.orphan_blobs == [] and young.temp_files == [] and young.young_skipped == 2
    later = time.time() + 7200
    report = fsck(meta, blobs, verify=True, now=later)
    assert [b.name for b in report.orphan_blobs] == [ids["orphan"]]
    assert [t.name for t in report.temp_files] == ["e" * 32 + ".part"]
    assert [m[0] for m in report.missing_blobs] == [ids["lost"]]
    assert [c[0] for c in report.corrupt_blobs] == [ids["rotten"]]
    repaired = fsck(meta, blobs, repair=True, min_age=0)
    assert repaired.removed == 2
    assert {b.name for b in blobs.iter_blobs()} == {ids["good"], ids["rotten"]}
    assert list(blobs.iter_temp()) == []
    assert fsck(meta, blobs, min_age=0).orphan_blobs == []


def run_mos(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the mos command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "mos.cli", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, check=False,
    )


def test_cli_fsck_exit_codes(tmp_path: Path) -> None:
    """fsck exits 1 while leftovers remain, 0 after --repair."""
    data = tmp_path / "data"
    blobs = FileSystemBlobStore(data)
    SQLiteMetadataStore(data / "metadata.db").close()
    blobs.put([b"orphan"], 100)
    first = run_mos("fsck", "--data-dir", str(data), "--min-age", "0")
    assert first.returncode == 1 and "orphan blob" in first.stdout
    fixed = run_mos("fsck", "--data-dir", str(data), "--min-age", "0", "--repair")
    assert fixed.returncode == 0 and "1 removed" in fixed.stdout
    assert run_mos("fsck", "--data-dir", str(data), "--min-age", "0").returncode == 0


def test_cli_serve_bad_setting_is_one_line(tmp_path: Path) -> None:
    """A bad setting stops `mos serve` at once with one line on stderr and exit 2."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    not_a_db = tmp_path / "notdb"
    (not_a_db / "metadata.db").mkdir(parents=True)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metadata.db").write_bytes(b"this is not a database" * 100)
    cases = [
        {"MOS_METADATA_URL": "postgres://x"},
        {"MOS_PORT": "nope"},
        {"MOS_DATA_DIR": "/proc/forbidden/data"},
        {"MOS_PORT": str(busy.getsockname()[1])},
        {"MOS_HOST": "no-such-host.invalid"},
        {"MOS_DATA_DIR": str(not_a_db)},
        {"MOS_DATA_DIR": str(garbage)},
        {"MOS_METADATA_URL": "mongodb://127.0.0.1:1/mos?serverSelectionTimeoutMS=300"},
        {"MOS_BLOB_STORE": "gridfs"},
    ]
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free = str(spare.getsockname()[1])
    for env in cases:
        done = run_mos("serve", env={"MOS_DATA_DIR": str(tmp_path / "d"), "MOS_PORT": free, **env})
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mos: "), (env, done.stderr)
    busy.close()
