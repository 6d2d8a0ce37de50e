"""Attention as pure functions: rotary positions, masked grouped-query attention.

Axis letters (the package legend, :mod:`pi0lite`): b batch · t query tokens · s key/value tokens ·
n query heads · k key/value heads · g query heads per kv head (n = k·g) · h head dim.

:func:`attention` is what the model runs; :func:`attention_weights` and :func:`attend` are the
same computation in two readable steps (probabilities, then their weighted sum of values), used to
record and plot the probabilities and as the reference in the tests. Long query sequences run
in row blocks (:data:`BLOCK_LOGITS`): same numbers, smaller temporaries.
"""

from __future__ import annotations

import einops
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from pi0lite.masks import MASK_VALUE

__all__ = ["BLOCK_LOGITS", "ROPE_BASE", "apply_rope", "attend", "attention", "attention_logits", "attention_weights"]

ROPE_BASE = 10_000.0


def apply_rope(x: Float[Array, "b t n h"], positions: Int[Array, "b t"]) -> Float[Array, "b t n h"]:
    """Rotary position embedding, half-split layout (not interleaved), base 10,000.

    Dimension pairs are ``(j, j + h/2)``; pair ``j`` turns by ``position · 10000^(−2j/h)`` radians.
    """
    half = x.shape[-1] // 2
    inv_freq = ROPE_BASE ** (-(2.0 / x.shape[-1]) * jnp.arange(half, dtype=jnp.float32))
    angle = positions.astype(jnp.float32)[..., None, None] * inv_freq  # [b, t, 1, h/2]
    sin, cos = jnp.sin(angle), jnp.cos(angle)
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


def attention_logits(
    q: Float[Array, "b t n h"], k: Float[Array, "b s k h"], mask: Bool[Array, "b t s"]
) -> Float[Array, "b n t s"]:
    """Masked attention logits in float32: ``q·kᵀ`` where the mask allows, ``MASK_VALUE`` elsewhere.

    ``q`` is expected already scaled by ``h^-0.5``. The g query heads that share a kv head are
    folded into the query axis, ``(g t)``, so the logits are one plain batched matmul per kv head.
    """
    num_kv, length = k.shape[2], q.shape[1]
    q = einops.rearrange(q, "b t (k g) h -> b k (g t) h", k=num_kv)
    logits = jnp.einsum("bkqh,bskh->bkqs", q, k, preferred_element_type=jnp.float32)  # q = (g t)
    logits = einops.rearrange(logits, "b k (g t) s -> b (k g) t s", t=length)
    return jnp.where(mask[:, None, :, :], logits, MASK_VALUE)


def attention_weights(
    q: Float[Array, "b t n h"], k: Float[Array, "b s k h"], mask: Bool[Array, "b t s"]
) -> Float[Array, "b n t s"]:
    """Grouped-query attention probabilities, masked with the finite ``MASK_VALUE``; softmax in f32.

    A fully masked query row (padding) gets a uniform distribution rather than NaN.
    """
    return jax.nn.softmax(attention_logits(q, k, mask), axis=-1)


def attend(probs: Float[Array, "b n t s"], v: Float[Array, "b s k h"]) -> Float[Array, "b t n h"]:
    """The probability-weighted sum of values; each kv head serves its g query heads."""
    length = probs.shape[2]
    grouped = einops.rearrange(probs.astype(v.dtype), "b (k g) t s -> b k (g t) s", k=v.shape[2])
    out = jnp.einsum("bkqs,bskh->bkqh", grouped, v)  # q = (g t)
    return einops.rearrange(out, "b k (g t) h -> b t (k g) h", t=length)


#: Upper bound on the logits one block of :func:`attention` holds (``batch × heads × query rows ×
#: keys`` elements, 12.6 MB in float32); longer query sequences are processed in row blocks.
BLOCK_LOGITS = 3 << 20


def attention(
    q: Float[Array, "b t n h"], k: Float[Array, "b s k h"], v: Float[Array, "b s k h"], mask: Bool[Array, "b t s"],
    *, return_probs: bool = False, block_logits: int | None = None,
) -> Float[Array, "b t n h"] | tuple[Float[Array, "b t n h"], Float[Array, "b n t s"]]:
    """``attend(attention_weights(q, k, mask), v)``, with the softmax's division moved after the values.

    ``softmax(l)·v = (exp(l − m)·v) / Σ exp(l − m)`` (m = the row maximum): dividing the small
    output ``[b, t, n, h]`` instead of the probabilities ``[b, n, t, s]`` saves a full read and
    write of the largest array of the layer (about a fifth of ``compute_loss`` and of sampling on
    ``OPENPI_DUMMY``); the results agree with the two-step form to float32 rounding (~1e-6).

    Every query row is independent of the others, so when the logits ``[b, n, t, s]`` would hold
    more than ``block_logits`` elements (default: the module's :data:`BLOCK_LOGITS`, read when the
    function is traced) the query rows are processed in equal blocks, one after
    the other (``lax.map``; the last block padded with masked rows that are dropped), each under
    ``jax.checkpoint`` so that a backward pass recomputes a block's probabilities instead of keeping
    every block's. The numbers are the same; the temporaries are a few times smaller, so fewer
    fresh pages are touched on every call (``OPENPI_DUMMY``, 816-token prefix in 4 blocks of 204
    rows: ``compute_loss`` 174 -> 79 ms, train step 445 -> 285 ms and 336 -> 87 MB of XLA
    temporaries on the 2-core machine). The suffix steps of sampling are below the bound.
    ``return_probs=True`` also returns the normalised probabilities (for plots; never blocked).
    """
    if return_probs:
        return _attention(q, k, v, mask, return_probs=True)
    bound = BLOCK_LOGITS if block_logits is None else block_logits
    if not isinstance(bound, int) or bound < 1:
        raise ValueError(f"block_logits must be a positive int (logits per block), got {bound!r}")
    (b, t, n, _), s = q.shape, k.shape[1]
    num_blocks = min(-(-b * n * t * s // bound), t)  # at least one query row per block
    if num_blocks <= 1:
        return _attention(q, k, v, mask)
    rows = -(-t // num_blocks)
    pad = num_blocks * rows - t  # padded rows: all keys masked, their output is dropped below
    q = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    mask = jnp.pad(mask, ((0, 0), (0, pad), (0, 0)))
    blocks = (einops.rearrange(q, "b (c r) n h -> c b r n h", c=num_blocks),
              einops.rearrange(mask, "b (c r) s -> c b r s", c=num_blocks))
    # checkpointed: a backward pass recomputes each block's probabilities instead of storing all of them
    block = jax.checkpoint(lambda qm: _attention(qm[0], k, v, qm[1]))
    out = jax.lax.map(block, blocks)  # [c, b, r, n, h]
    return einops.rearrange(out, "c b r n h -> b (c r) n h")[:, :t]


def _attention(q, k, v, mask, *, return_probs=False):
    """One block of :func:`attention` (all its query rows at once)."""
    logits = attention_logits(q, k, mask)
    # the maximum only keeps exp() in range; it cancels in the ratio, so no gradient flows through it
    e = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    total = jnp.sum(e, axis=-1)  # [b, n, t]
    out = attend(e, v).astype(jnp.float32) / einops.rearrange(total, "b n t -> b t n")[..., None]
    out = out.astype(v.dtype)
    return (out, e / total[..., None]) if return_probs else out
