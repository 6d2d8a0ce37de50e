"""Running a stack of layers: a Python loop or ``jax.lax.scan``, with or without rematerialisation.

Axis letters: l layers (the leading axis of every stacked weight and of the stacked outputs).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

#: A layer number as ``one_layer`` sees it: a Python int in the loop, a traced scalar under ``scan``.
LayerIndex = int | Int[Array, ""]


def run_layers(one_layer: Callable, x: Any, depth: int, per_layer: Any = None, *, scan: bool = False,
               remat: bool = False) -> tuple[Any, Any]:
    """``x, y = one_layer(x, layer, per_layer[layer])`` for every layer; returns the last ``x`` and the
    ``y``s stacked over layers (``per_layer`` and ``y`` are pytrees with a leading ``l`` axis, or None).

    ``scan=False``: a Python loop (reads like the maths; compile time grows with the depth).
    ``scan=True``: ``jax.lax.scan`` over the layer index (one compiled layer: openpi's ``nn.scan``).
    ``remat=True``: each layer runs under ``jax.checkpoint``, so the backward pass keeps only every
    layer's input and recomputes the rest (openpi's ``nn.remat``): far less memory, ~⅓ more compute.
    Every mode gives the same numbers.
    """
    if scan:
        fn = jax.checkpoint(one_layer) if remat else one_layer
        return jax.lax.scan(lambda x, inputs: fn(x, *inputs), x, (jnp.arange(depth), per_layer))
    fn = jax.checkpoint(one_layer, static_argnums=(1,)) if remat else one_layer
    ys = []
    for layer in range(depth):
        x, y = fn(x, layer, None if per_layer is None else jax.tree.map(lambda a: a[layer], per_layer))
        ys.append(y)
    return x, jax.tree.map(lambda *a: jnp.stack(a), *ys)
