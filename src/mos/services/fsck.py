"""fsck: find orphan blobs, leftover temp files and rows whose blob is missing."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from mos.stores.base import BlobMissing, BlobStore, Leftover, MetadataStore, is_inline_id


@dataclass
class FsckReport:
    """What a check found, and what a repair removed."""

    orphan_blobs: list[Leftover] = field(default_factory=list)
    temp_files: list[Leftover] = field(default_factory=list)
    missing_blobs: list[tuple[str, str, str]] = field(default_factory=list)
    corrupt_blobs: list[tuple[str, str, str]] = field(default_factory=list)
    young_skipped: int = 0
    removed: int = 0


def fsck(
    meta: MetadataStore,
    blobs: BlobStore,
    *,
    repair: bool = False,
    verify: bool = False,
    min_age: float = 3600.0,
    now: float | None = None,
) -> FsckReport:
    """Compare rows and blobs; with repair, remove orphans and temp files older than min_age.

    Files younger than min_age may belong to an upload in flight, so they are only counted.
    """
    now = time.time() if now is None else now
    report = FsckReport()
    referenced = {blob_id for blob_id, _owner, _identifier in meta.iter_blob_refs()}
    for blob in blobs.iter_blobs():
        if blob.name in referenced:
            continue
        if now - blob.mtime < min_age:
            report.young_skipped += 1
            continue
        report.orphan_blobs.append(blob)
    for temp in blobs.iter_temp():
        if now - temp.mtime < min_age:
            report.young_skipped += 1
            continue
        report.temp_files.append(temp)
    # Read the rows again after the scan: a row committed during it makes its blob no orphan.
    refs = list(meta.iter_blob_refs())
    later = {ref[0] for ref in refs}
    report.orphan_blobs = [b for b in report.orphan_blobs if b.name not in later]
    for ref in refs:
        # A row that holds its bytes has nothing to find in the blob store.
        if not is_inline_id(ref[0]) and not blobs.exists(ref[0]):
            report.missing_blobs.append(ref)
        elif verify and not _hash_matches(meta, blobs, ref):
            report.corrupt_blobs.append(ref)
    if repair:
        for blob in report.orphan_blobs:
            blobs.delete(blob.name)
            report.removed += 1
        for temp in report.temp_files:
            blobs.remove_temp(temp.name, older_than=now - min_age)
            report.removed += 1
    return report


def _hash_matches(meta: MetadataStore, blobs: BlobStore, ref: tuple[str, str, str]) -> bool:
    record = meta.get_object(ref[1], ref[2])
    if record is None or record.blob_id != ref[0]:
        return True  # replaced or deleted meanwhile: nothing to judge
    if is_inline_id(ref[0]):  # a row that should hold its bytes and holds none has lost them
        return record.inline is not None and (
            hashlib.sha256(record.inline).hexdigest() == record.sha256)
    digest = hashlib.sha256()
    try:
        with blobs.open(ref[0]) as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
    except BlobMissing:
        return True  # deleted meanwhile; a real loss is reported as missing
    return digest.hexdigest() == record.sha256
