"""Inference time per action chunk of a toy :class:`pi0lite.toy.policy.Policy` (wall clock).

``time_per_chunk`` calls ``policy.infer`` on the same observations ``repeats`` times after one
warm-up call (which compiles) and returns the best and the median time in seconds. The best of a
few repeats is the least disturbed by other work on a shared machine; report the load average
beside it (:func:`machine`).

Axis letters: b batch, s image side.
"""

from __future__ import annotations

import os
import platform
import time

import jax
import numpy as np


def time_per_chunk(policy, images, state, instructions, *, repeats: int = 10, key=None) -> dict:
    """``{"best_s", "median_s", "batch"}`` of ``policy.infer`` on one batch (after a warm-up call)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    key = jax.random.key(0) if key is None else key
    policy.infer(images, state, instructions, key)  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        policy.infer(images, state, instructions, key)  # returns numpy: the work is done
        times.append(time.perf_counter() - t0)
    return {"best_s": float(np.min(times)), "median_s": float(np.median(times)), "batch": int(len(state))}


def machine() -> dict:
    """CPU model, usable cores and the load average now (for reporting timings)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"cpu": model, "cores": cores, "load_average": load}
