"""pi0lite.malloc: with it, a call's large buffers are reused (no page faults); without, every
call pays for fresh pages. Each case runs in its own interpreter: glibc reads the settings once."""

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, resource
import jax, jax.numpy as jnp
import pi0lite
x = jnp.ones((16 * 1024 * 1024,), jnp.float32)  # 64 MB: above glibc's default mmap threshold
f = jax.jit(lambda x: x + 1.0)  # a fresh 64 MB output buffer per call
for _ in range(3):
    f(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    y = f(x).block_until_ready()
    del y
per_call = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"keep": pi0lite.KEEP_FREED_MEMORY, "faults_per_call": per_call}))
"""


def run_child(keep: str) -> dict:
    env = dict(os.environ, PI0LITE_KEEP_FREED_MEMORY=keep, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_removes_the_page_faults_of_each_call():
    kept, default = run_child("1"), run_child("0")
    assert kept["keep"] is True and default["keep"] is False
    # 64 MB of fresh pages is 16,384 faults of 4 kB: glibc's default pays them on every call
    assert default["faults_per_call"] > 4000, default
    assert kept["faults_per_call"] < 100, kept


def test_release_freed_memory_is_callable():
    from pi0lite import malloc

    assert malloc.release_freed_memory() in (True, False)
