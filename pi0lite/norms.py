"""RMSNorm and pi0.5's adaptive RMSNorm (adaRMS).

Axis letters (legend in :mod:`pi0lite`): b batch · t tokens · d width · c condition width · l layers.

* RMSNorm: ``x · rsqrt(mean(x²) + 1e-6) · (1 + scale)`` with ``scale`` initialised to 0.
* adaRMS (pi0.5's action expert): a Dense maps the condition (the time embedding) to
  ``(scale, shift, gate)``; the norm gives ``x̂·(1 + scale) + shift`` and the block multiplies the
  sub-layer output by ``gate`` before adding it to the residual stream. The Dense starts at zero,
  so a fresh pi0.5 action expert has its residual branches switched off until trained.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from pi0lite.remat import LayerIndex

RMS_EPS = 1e-6


def _normalise(x):
    var = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(var + RMS_EPS)


def rms_norm(x: Float[Array, "... d"], scale: Float[Array, "d"]) -> Float[Array, "... d"]:
    """RMSNorm with a zero-initialised scale used as ``(1 + scale)``; statistics in float32."""
    return (_normalise(x) * (1.0 + scale)).astype(x.dtype)


def ada_rms_norm(
    x: Float[Array, "b t d"], cond: Float[Array, "b c"] | Float[Array, "b t c"], kernel: Float[Array, "c 3*d"],
    bias: Float[Array, "3*d"],
) -> tuple[Float[Array, "b t d"], Float[Array, "b 1 d"] | Float[Array, "b t d"]]:
    """Adaptive RMSNorm: returns the normed tokens and the residual gate.

    ``cond`` is one condition per example ``[b, c]`` (openpi) or one per token ``[b, t, c]``
    (per-token time, :mod:`pi0lite.rtc`); the gate is ``[b, 1, d]`` or ``[b, t, d]`` accordingly.
    """
    modulation = cond.astype(x.dtype) @ kernel.astype(x.dtype) + bias.astype(x.dtype)
    if cond.ndim == 2:
        modulation = modulation[:, None, :]
    scale, shift, gate = jnp.split(modulation, 3, axis=-1)
    return (_normalise(x) * (1.0 + scale) + shift).astype(x.dtype), gate


class RMSNorm(nnx.Module):
    """``scale`` has shape ``lead + (d,)`` (``lead`` = (depth,) for stacked layers)."""

    def __init__(self, shape: tuple[int, ...]):
        self.scale = nnx.Param(jnp.zeros(shape, jnp.float32))

    def __call__(self, x, layer: LayerIndex | None = None, cond=None):
        """Return ``(normed, gate)``; a plain RMSNorm has no gate (None)."""
        scale = self.scale[...] if layer is None else self.scale[layer]
        return rms_norm(x, scale), None


class AdaDense(nnx.Module):
    def __init__(self, lead: tuple[int, ...], cond_dim: int, width: int):
        self.kernel = nnx.Param(jnp.zeros(lead + (cond_dim, 3 * width), jnp.float32))
        self.bias = nnx.Param(jnp.zeros(lead + (3 * width,), jnp.float32))


class AdaRMSNorm(nnx.Module):
    """pi0.5's conditional norm; parameters ``Dense_0/{kernel, bias}`` (openpi's names), no scale."""

    def __init__(self, lead: tuple[int, ...], cond_dim: int, width: int):
        self.Dense_0 = AdaDense(lead, cond_dim, width)

    def __call__(self, x, layer: LayerIndex | None = None, cond=None):
        if cond is None:
            raise ValueError("an adaRMS expert needs adarms_cond (the time condition), got None")
        d = self.Dense_0
        kernel, bias = (d.kernel[...], d.bias[...]) if layer is None else (d.kernel[layer], d.bias[layer])
        return ada_rms_norm(x, cond, kernel, bias)


def make_norm(lead: tuple[int, ...], width: int, adarms: bool):
    return AdaRMSNorm(lead, width, width) if adarms else RMSNorm(lead + (width,))
