"""Start the kernel's writeback of a file range early (Linux sync_file_range), when available."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

# SYNC_FILE_RANGE_WRITE: start writing the dirty pages of the range, do not wait.
_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int], None]:
    """sync_file_range from the C library, or a no-op where there is none (not Linux)."""
    name = ctypes.util.find_library("c")
    fn = getattr(ctypes.CDLL(name, use_errno=True), "sync_file_range", None) if name else None
    if fn is None:
        return lambda fd, offset, length: None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def start(fd: int, offset: int, length: int) -> None:
        # A failure here only means no head start; the fsync at the end still decides. Never
        # add SYNC_FILE_RANGE_WAIT_AFTER: it would consume a write error the fsync must see.
        fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE)

    return start


start_writeback = _load()
"""start_writeback(fd, offset, length): ask the kernel to begin writing that range to disk.

Without it, a large upload sits in the page cache until the final fsync, which then writes
everything while the client waits; started as the bytes arrive, the disk works in parallel
with the network and the hashing, and the final fsync finds little left to do. Durability
is unchanged: the fsync still comes before the rename.
"""
