"""Gemma blocks and the mixture of transformers (two experts, one shared attention).

Axis letters
------------
b batch · t query tokens (this call) · s key tokens (cache + this call) · d model width ·
n query heads · k key/value heads · g query heads per kv head (n = k·g) · h head dim ·
f feed-forward hidden size · l layer (depth) · v vocabulary.

Every expert ``i`` owns all of its weights (norms, q/k/v/out projections, feed-forward) but in
every layer the queries, keys and values of all experts are concatenated along the sequence and
go through **one** attention. Expert 0 (the VLM) has no name suffix; expert ``i ≥ 1`` uses the
suffix ``_i`` (``q_einsum_1``, ``mlp_1``, ``final_norm_1``), exactly like openpi, so openpi
parameters load unchanged. Layer weights carry a leading depth axis ``l`` (openpi's scanned
layout); the forward pass walks the layers with a plain Python loop, which reads like the maths.
"""

from __future__ import annotations

from typing import Sequence

import einops
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from pi0lite.config import GemmaConfig
from pi0lite.init import fan_in_normal, normal
from pi0lite.masks import MASK_VALUE
from pi0lite.norms import RMSNorm, make_norm, rms_norm  # noqa: F401  (rms_norm re-exported)

# _s: a prepended cache has fewer slots than the mask's keys s; _h: "h" is the action horizon in pi0
KVCache = tuple[Float[Array, "l b _s k _h"], Float[Array, "l b _s k _h"]]
ROPE_BASE = 10_000.0


# --- pure functions ------------------------------------------------------------------------

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


def attention_weights(
    q: Float[Array, "b t n h"], k: Float[Array, "b s k h"], mask: Bool[Array, "b t s"]
) -> Float[Array, "b n t s"]:
    """Grouped-query attention probabilities, masked with the finite ``MASK_VALUE``; softmax in f32.

    ``q`` is expected already scaled by ``h^-0.5``. A fully masked query row (padding) gets a
    uniform distribution rather than NaN. The g query heads that share a kv head are folded
    into the query axis, ``(g t)``, so the logits are one plain batched matmul per kv head.
    """
    num_kv, length = k.shape[2], q.shape[1]
    q = einops.rearrange(q, "b t (k g) h -> b k (g t) h", k=num_kv)
    logits = jnp.einsum("bkqh,bskh->bkqs", q, k, preferred_element_type=jnp.float32)
    logits = einops.rearrange(logits, "b k (g t) s -> b (k g) t s", t=length)
    logits = jnp.where(mask[:, None, :, :], logits, MASK_VALUE)
    return jax.nn.softmax(logits, axis=-1)


def gelu_tanh(x):
    return jax.nn.gelu(x, approximate=True)


# --- parameter holders ---------------------------------------------------------------------

_init = fan_in_normal


class Einsum(nnx.Module):
    """A weight ``w`` used in an einsum (openpi's name for every Gemma projection)."""

    def __init__(self, shape: tuple[int, ...], fan_in: int, *, rngs: nnx.Rngs):
        self.w = _init(rngs, shape, fan_in)


class FeedForward(nnx.Module):
    """GeGLU: ``(gelu_tanh(x·G₀) ⊙ (x·G₁))·W``, weights stacked over layers."""

    def __init__(self, depth: int, width: int, mlp_dim: int, *, rngs: nnx.Rngs):
        self.gating_einsum = _init(rngs, (depth, 2, width, mlp_dim), width)
        self.linear = _init(rngs, (depth, mlp_dim, width), mlp_dim)

    def __call__(self, x: Float[Array, "b t d"], layer: int) -> Float[Array, "b t d"]:
        gate, up = jnp.einsum("btd,cdf->cbtf", x, self.gating_einsum[layer].astype(x.dtype))
        return jnp.einsum("btf,fd->btd", gelu_tanh(gate) * up, self.linear[layer].astype(x.dtype))


class Embedder(nnx.Module):
    """Token embedding shared with the output logits (tied): encode scales by ``sqrt(d)``."""

    def __init__(self, vocab_size: int, width: int, *, rngs: nnx.Rngs):
        self.input_embedding = nnx.Param(normal(rngs.params(), (vocab_size, width), std=0.01))

    def encode(self, ids: Int[Array, "b t"]) -> Float[Array, "b t d"]:
        table = self.input_embedding[...]
        return table[ids] * jnp.sqrt(jnp.asarray(table.shape[1], table.dtype))

    def decode(self, x: Float[Array, "b t d"]) -> Float[Array, "b t v"]:
        """Logits in float32 whatever the compute dtype (openpi promotes bf16 activations to f32)."""
        table = self.input_embedding[...].astype(jnp.float32)
        return jnp.einsum("btd,vd->btv", x.astype(jnp.float32), table)


def _suffix(i: int) -> str:
    return "" if i == 0 else f"_{i}"


class Attention(nnx.Module):
    """Per-expert q/k/v/out projections for every layer; the attention itself is shared."""

    def __init__(self, configs: Sequence[GemmaConfig], *, rngs: nnx.Rngs):
        self.num_experts = len(configs)
        for i, c in enumerate(configs):
            l, n, k, h, d = c.depth, c.num_heads, c.num_kv_heads, c.head_dim, c.width
            setattr(self, "q_einsum" + _suffix(i), Einsum((l, n, d, h), d, rngs=rngs))
            setattr(self, "kv_einsum" + _suffix(i), Einsum((l, 2, k, d, h), d, rngs=rngs))
            setattr(self, "attn_vec_einsum" + _suffix(i), Einsum((l, n, h, d), n * h, rngs=rngs))

    def weights(self, i: int, layer: int):
        s = _suffix(i)
        return tuple(getattr(self, name + s).w[layer] for name in ("q_einsum", "kv_einsum", "attn_vec_einsum"))

    def __call__(self, xs, layer, positions, mask, cache, cache_index, record):
        """One shared attention over the concatenated experts; returns per-expert outputs and (k, v)."""
        qs, ks, vs, lengths = [], [], [], []
        for i, x in enumerate(xs):
            if x is None:
                continue
            wq, wkv, _ = self.weights(i, layer)
            qs.append(jnp.einsum("btd,ndh->btnh", x, wq.astype(x.dtype)))
            k, v = jnp.einsum("btd,ckdh->cbtkh", x, wkv.astype(x.dtype))
            ks.append(k)
            vs.append(v)
            lengths.append(x.shape[1])
        q, k, v = (jnp.concatenate(a, axis=1) for a in (qs, ks, vs))  # expert order: prefix first
        q = apply_rope(q, positions) * q.shape[-1] ** -0.5  # scale after RoPE (openpi)
        k = apply_rope(k, positions)
        if cache is not None:
            k_cache, v_cache = cache
            if cache_index is None:  # prepend the cached keys/values (pi0 suffix steps)
                k = jnp.concatenate([k_cache.astype(k.dtype), k], axis=1)
                v = jnp.concatenate([v_cache.astype(v.dtype), v], axis=1)
            else:  # write into a fixed-size buffer (autoregressive decoding, static shapes)
                k = jax.lax.dynamic_update_slice_in_dim(k_cache.astype(k.dtype), k, cache_index, axis=1)
                v = jax.lax.dynamic_update_slice_in_dim(v_cache.astype(v.dtype), v, cache_index, axis=1)
        if mask.shape != (q.shape[0], q.shape[1], k.shape[1]):
            raise ValueError(
                f"attention mask must be [batch, queries, keys] = {(q.shape[0], q.shape[1], k.shape[1])}, "
                f"got {mask.shape}"
            )
        probs = attention_weights(q, k, mask)
        if record:
            self.sow(nnx.Intermediate, "attn_probs", probs)
        probs = einops.rearrange(probs.astype(v.dtype), "b (k g) t s -> b k (g t) s", k=k.shape[2])
        out = jnp.einsum("bkqs,bskh->bkqh", probs, v)
        out = einops.rearrange(out, "b k (g t) h -> b t (k g) h", t=q.shape[1])
        outs, start = [], 0
        for i, x in enumerate(xs):
            if x is None:
                outs.append(None)
                continue
            _, _, wo = self.weights(i, layer)
            piece = out[:, start : start + x.shape[1]]
            outs.append(jnp.einsum("btnh,nhd->btd", piece, wo.astype(x.dtype)))
            start += x.shape[1]
        return outs, (k, v)


class Layers(nnx.Module):
    """All transformer blocks of all experts, weights stacked over depth (openpi's ``layers``)."""

    def __init__(self, configs: Sequence[GemmaConfig], adarms: Sequence[bool], *, rngs: nnx.Rngs):
        self.attn = Attention(configs, rngs=rngs)
        for i, (c, ada) in enumerate(zip(configs, adarms)):
            s = _suffix(i)
            setattr(self, "pre_attention_norm" + s, make_norm((c.depth,), c.width, ada))
            setattr(self, "pre_ffw_norm" + s, make_norm((c.depth,), c.width, ada))
            setattr(self, "mlp" + s, FeedForward(c.depth, c.width, c.mlp_dim, rngs=rngs))

    def block(self, xs, conds, layer, positions, mask, cache, cache_index, record):
        """One pre-norm block: ``x + attn(norm(x))``, then ``x + ffw(norm(x))``, per expert.

        With adaRMS (pi0.5) each sub-layer output is multiplied by the norm's gate first.
        """
        normed, gates = [], []
        for i, (x, cond) in enumerate(zip(xs, conds)):
            y, gate = (None, None) if x is None else getattr(self, "pre_attention_norm" + _suffix(i))(x, layer, cond)
            normed.append(y)
            gates.append(gate)
        attn_out, kv = self.attn(normed, layer, positions, mask, cache, cache_index, record)
        new_xs = []
        for i, (x, y, gate, cond) in enumerate(zip(xs, attn_out, gates, conds)):
            if x is None:
                new_xs.append(None)
                continue
            s = _suffix(i)
            x = x + (y if gate is None else y * gate)
            h, gate = getattr(self, "pre_ffw_norm" + s)(x, layer, cond)
            y = getattr(self, "mlp" + s)(h, layer)
            new_xs.append(x + (y if gate is None else y * gate))
        return new_xs, kv


def check_experts_agree(configs: Sequence[GemmaConfig]) -> None:
    """The experts share one attention per layer: same depth, heads, kv heads and head dim."""
    if not configs:
        raise ValueError("Gemma needs at least one expert config, got none")
    for i, c in enumerate(configs[1:], start=1):
        for name in ("depth", "num_heads", "num_kv_heads", "head_dim"):
            if getattr(c, name) != getattr(configs[0], name):
                raise ValueError(
                    f"expert {i} has {name}={getattr(c, name)} but expert 0 has {name}={getattr(configs[0], name)}: "
                    "experts share one attention per layer, so depth, num_heads, num_kv_heads and head_dim must agree"
                )


class Gemma(nnx.Module):
    """The mixture of transformers: ``len(configs)`` experts sharing one attention per layer.

    ``Gemma([cfg])`` is a plain single-expert Gemma (pi0-FAST); ``Gemma([vlm, action])`` is pi0's;
    ``adarms=(False, True)`` gives pi0.5's action expert adaptive norms. Only expert 0 has a
    token embedder.
    """

    def __init__(
        self,
        configs: Sequence[GemmaConfig],
        *,
        vocab_size: int,
        rngs: nnx.Rngs,
        dtype: str = "float32",
        adarms: Sequence[bool] | None = None,
    ):
        self.configs = tuple(configs)
        check_experts_agree(self.configs)
        self.adarms = tuple(adarms) if adarms is not None else (False,) * len(configs)
        if len(self.adarms) != len(self.configs):
            raise ValueError(f"adarms needs one flag per expert ({len(configs)}), got {self.adarms}")
        self.dtype = jnp.dtype(dtype)
        self.embedder = Embedder(vocab_size, configs[0].width, rngs=rngs)
        self.layers = Layers(configs, self.adarms, rngs=rngs)
        for i, (c, ada) in enumerate(zip(configs, self.adarms)):
            setattr(self, "final_norm" + _suffix(i), make_norm((), c.width, ada))

    def __call__(
        self,
        xs: Sequence[Float[Array, "b _t _d"] | None],
        *,
        positions: Int[Array, "b t"],
        mask: Bool[Array, "b t s"],
        kv_cache: KVCache | None = None,
        cache_index: int | Int[Array, ""] | None = None,
        record_attention: bool = False,
        adarms_cond: Sequence[Float[Array, "b _c"] | None] | None = None,
    ) -> tuple[list[Float[Array, "b _t _d"] | None], KVCache]:
        """Run every expert whose input is not None; return final-normed outputs and the (k, v) cache.

        ``adarms_cond[i]`` is the condition of expert i's adaptive norms (pi0.5), else None.
        """
        if len(xs) != len(self.configs):
            raise ValueError(f"expected {len(self.configs)} expert inputs, got {len(xs)}")
        for i, (x, c) in enumerate(zip(xs, self.configs)):
            if x is not None and (x.ndim != 3 or x.shape[-1] != c.width):
                raise ValueError(f"expert {i} input must be [batch, tokens, {c.width}], got {x.shape}")
        xs = [None if x is None else x.astype(self.dtype) for x in xs]
        conds = list(adarms_cond) if adarms_cond is not None else [None] * len(xs)
        ks, vs = [], []
        for layer in range(self.configs[0].depth):
            cache = None if kv_cache is None else (kv_cache[0][layer], kv_cache[1][layer])
            xs, (k, v) = self.layers.block(xs, conds, layer, positions, mask, cache, cache_index, record_attention)
            ks.append(k)
            vs.append(v)
        outs = [
            None if x is None else getattr(self, "final_norm" + _suffix(i))(x, None, cond)[0]  # final gate unused
            for i, (x, cond) in enumerate(zip(xs, conds))
        ]
        return outs, (jnp.stack(ks), jnp.stack(vs))
