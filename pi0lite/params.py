"""Counting parameters of an ``nnx.Module`` (real or abstract).

Introduced in notebook 00. Works on a model built with ``nnx.eval_shape`` too, whose leaves
are ``jax.ShapeDtypeStruct`` (no memory allocated): that is how notebook 04 counts the real
pi0's ~3.3 billion parameters on a laptop.
"""

from __future__ import annotations

import math

import jax
from flax import nnx


def count_params(model: nnx.Module, variable_type=nnx.Param) -> int:
    """Number of scalar entries in all ``variable_type`` variables (default: trainable ``nnx.Param``).

    Batch statistics (``nnx.BatchStat``), RNG state and caches are not parameters and are not
    counted.
    """
    leaves = jax.tree.leaves(nnx.state(model, variable_type))
    return sum(math.prod(leaf.shape) for leaf in leaves)
