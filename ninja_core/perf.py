"""Process-level speed settings for the long-running entry points (server, CLI), never applied on import."""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """Keep freed tensor memory in the process instead of returning it to the OS after every run.

    glibc hands blocks over 128 KiB straight back with munmap, so a large run (4096 × 1024 floats
    = 16 MiB per tensor) page-faults all its memory in again each time; measured here that was
    ~100 ms of a ~350 ms check. Raising the mmap threshold to its maximum (32 MiB) lets such blocks
    come from the reusable heap. Returns False where glibc's mallopt is not available.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024) == 1 and ok
    return ok
