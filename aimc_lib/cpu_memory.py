"""Keep freed CPU memory for reuse, so that large tensors do not cost a page fault per 4 KiB.

On Linux, glibc's ``malloc`` hands every request above its *mmap threshold* (at most 32 MiB)
straight to the kernel with ``mmap`` and gives it back with ``munmap`` when freed. One
1,000-image batch of ResNet-32 activations is 65 MB per tensor, so every layer of every batch
maps fresh pages, and the kernel zeroes each 4 KiB page on first touch: measured here (2 cores,
2,000 test images at 1,000 per batch) 1.35 million page faults and 4.3 s of system time in a
5.5 s evaluation. With mmap off and the heap trimmed only when 2 GB lie free at its top, freed
tensors are reused: the same evaluation takes 2.9 s, bit for bit the same result.

:func:`keep_freed_memory` sets that once per process: the command line and the scripts call it
in their machine set-up, the notebooks in their set-up cell; importing ``aimc_lib`` changes
nothing. It governs the allocations of the main thread (glibc's main arena), where a notebook
kernel, the CLI and the scripts run their tensors; another thread's arena still maps blocks above 32 MB. The price:
the process keeps its peak memory until it ends (about 1.5 GB for a chapter of the book). Set
``AIMC_MALLOC_DEFAULTS=1`` to keep glibc's defaults. Elsewhere (macOS, Windows, musl) it does
nothing. The same works from the shell for any program: ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647``.
"""
from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
#: Bytes of free memory at the top of the heap before glibc gives any back (the largest ``int``).
TRIM_THRESHOLD_BYTES = 2**31 - 1

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc to serve every allocation from its heap and to keep freed memory (once per process).

    Returns True where it took effect (Linux with glibc, ``AIMC_MALLOC_DEFAULTS`` not set).
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("AIMC_MALLOC_DEFAULTS", "") not in ("", "0"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
