"""Parameter initialisers that are cheap on a CPU.

Every random draw still comes from the module's ``rngs`` (explicit, reproducible randomness),
but a concrete key is turned into NumPy draws instead of a ``jax.random.normal`` call per
parameter shape: on a CPU each new shape would cost an XLA compile (about 60 of them for the
TINY pi0, ~10–30 s on a cold cache). Under tracing — ``nnx.eval_shape`` for the real 3.2 B
parameter sizes, or a jitted constructor — the key is abstract and the JAX draw is used, so
nothing is allocated.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def normal(key: jax.Array, shape: tuple[int, ...], std: float = 1.0) -> jax.Array:
    """``std · N(0, 1)`` of ``shape`` in float32, drawn from ``key``."""
    if isinstance(key, jax.core.Tracer):
        return std * jax.random.normal(key, shape, jnp.float32)
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    draw = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    return jnp.asarray(draw * np.float32(std))


def fan_in_normal(rngs: nnx.Rngs, shape: tuple[int, ...], fan_in: int) -> nnx.Param:
    """A parameter ``N(0, 1/fan_in)``: unit-variance outputs for unit-variance inputs."""
    return nnx.Param(normal(rngs.params(), shape, 1.0 / math.sqrt(fan_in)))


def lecun_kernel_init(key, shape, dtype=jnp.float32):
    """``kernel_init`` for ``nnx.Linear``: ``N(0, 1/fan_in)`` with fan_in = shape[0]."""
    return normal(key, shape, 1.0 / math.sqrt(shape[0])).astype(dtype)


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` (kernel ``[in, out]``, zero bias) with the cheap initialiser."""
    return nnx.Linear(in_features, out_features, kernel_init=lecun_kernel_init, rngs=rngs)
