"""Keep freed memory in the process, so XLA's per-call buffers stop costing page faults.

XLA on the CPU allocates every call's temporary buffer afresh (60 MB per toy training step, ~100
MB per ``OPENPI_DUMMY`` pass) and frees it when the call ends. With glibc's default settings a
block that large is ``mmap``-ed from the kernel and handed back on ``free``; the next call then
touches brand-new pages, and the kernel zeroes every one of them on first touch. Measured on the
2-core Xeon (toy training step, ``TINY`` batch 64, pinned to one core): 14,700 page faults per
step, 28–33 ms of the 107–132 ms step spent in the kernel. With the settings below the same
step takes 81–99 ms with no page faults and no time in the kernel; the numbers it computes are
identical (only where the memory comes from changes).

:func:`keep_freed_memory` makes every thread allocate from glibc's main heap (``M_ARENA_MAX=1``: a
thread's own arena is capped at 64 MB, so a 60 MB buffer there is ``mmap``-ed whatever the
threshold), raises the ``mmap`` threshold to 1 GiB (blocks below it come from the heap, which is
reused) and the trim threshold to 2 GiB (freed heap is kept for the next call). With only the two
thresholds, one run in three still took 9,200 faults per step; with all three, 0 faults per call
once the heap has settled. In about one process in three (``tests/test_malloc.py``'s 64 MB buffer)
the heap first grows by a whole buffer on each of the first few to ~15 calls (the leftovers of
aligned allocations fragment it, so the freed buffer does not fit the next request) before it has
room to reuse; after 40 calls all of ten processes were at 0 faults. A training run makes
thousands of calls, so only its first steps pay. The
cost: the process keeps its peak heap instead of returning it to the system (call
:func:`release_freed_memory` to hand it back, as the benchmarks do before measuring RSS).
The training jobs apply it at their start (:func:`apply_default`: the demo's workers
``pi0lite.toy.demo_worker`` and ``fast_job``, one pinned core each), before JAX runs anything;
``PI0LITE_KEEP_FREED_MEMORY=0`` turns it off. It is **not** applied on ``import pi0lite``: with
both cores working on one call the single heap costs more than the faults it saves (measured
with ``benchmarks/bench_pi0.py`` on the idle machine, settings on / off in the same process
layout: ``OPENPI_DUMMY`` cached sampling 216 / 164 ms, ``TINY`` train step 9.9 / 5.9 ms; only the
``OPENPI_DUMMY`` train step gained, 391 / 482 ms). On other C libraries (macOS, musl) both
functions do nothing and return False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ENV_VAR", "keep_freed_memory", "release_freed_memory"]

ENV_VAR = "PI0LITE_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt parameters (glibc's malloc.h)
MMAP_THRESHOLD = 1 << 30  # bytes: blocks below this come from the reusable heap
TRIM_THRESHOLD = (1 << 31) - 1  # bytes of free heap kept before any is returned to the system


def _glibc():
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def keep_freed_memory() -> bool:
    """Apply the three glibc settings (see the module docstring); True if all were accepted."""
    libc = _glibc()
    if libc is None:
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return all([bool(libc.mallopt(param, value)) for param, value in settings])


def release_freed_memory() -> bool:
    """Hand the free heap back to the system now (glibc ``malloc_trim(0)``); True if any was released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def apply_default() -> bool:
    """What the training jobs run first: :func:`keep_freed_memory` unless ``PI0LITE_KEEP_FREED_MEMORY=0``."""
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return keep_freed_memory()
