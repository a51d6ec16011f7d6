"""How crawl processes tune the runtime under them: the garbage collector and glibc's malloc.

Both are applied in every crawl process, the main one and each parser worker.

The collector: a crawl allocates a great many short-lived containers per page (headers, requests,
outcomes) and almost no reference cycles, so CPython's default thresholds run the cyclic collector
far more often than it finds anything. Freezing what start-up created and collecting the young
generation less often removes most of that cost; memory stays bounded because reference counting,
not the collector, frees almost everything.

The allocator (glibc; elsewhere a no-op): every page allocates and frees a few large blocks (pipe
frames carrying a batch of bodies, the inflated body, Lexbor's tree). Out of the box glibc serves
large blocks with a fresh ``mmap()`` and hands the top of the heap back to the kernel whenever
enough of it is free, so the next page faults the same memory in again, zeroed. Fixed thresholds
keep that memory in the process for the next page instead. What a process keeps is bounded by
``_TRIM_THRESHOLD`` above its own high-water mark, and blocks above ``_MMAP_THRESHOLD`` (a huge
body) still go straight back.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import platform

__all__ = ["tune_gc", "tune_malloc"]

log = logging.getLogger("crawlkit.memory")

_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Move everything alive now out of the collector's sight, and collect less often."""
    # No collection first: start-up leaves a few dozen unreachable objects (typing and dataclass
    # caches), kept for good by the freeze, where a full collection of every imported module
    # costs ~10 ms on the path to the first request, in the main process and in each worker.
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(_GEN0_THRESHOLD, gen1, gen2)


# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
_TRIM_THRESHOLD = 64 << 20


def tune_malloc() -> bool:
    """Set fixed mmap and trim thresholds; True if the allocator took them."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    took = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
    took = bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)) and took
    if not took:
        log.debug("malloc thresholds not accepted; the allocator keeps its defaults")
    return took
