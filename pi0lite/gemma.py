"""Gemma blocks and the mixture of transformers (experts with their own weights, one shared attention).

Axis letters (the package legend, :mod:`pi0lite`): b batch · t tokens of this call (queries) ·
s key/value tokens (cache + this call) · d expert width · n query heads · k key/value heads ·
g query heads per kv head (n = k·g) · h head dim · f feed-forward hidden size · l layers ·
v vocabulary · c adaRMS condition width.

``Gemma.experts[i]`` (an :class:`Expert`) holds **all** weights of expert ``i`` — norms, q/k/v/out
projections, feed-forward, final norm — stacked over depth (a leading ``l`` axis, openpi's scanned
layout). In every layer the queries, keys and values of all experts are concatenated along the
sequence and go through **one** attention (:meth:`Gemma.attention`); each expert then applies its
own output projection to its slice. The forward pass walks the layers with a plain Python loop,
which reads like the maths.

openpi stores the same weights under one ``layers`` tree with a name suffix per expert
(``layers/attn/q_einsum_1/w`` for ``experts/1/attn/q_einsum/w``); :mod:`pi0lite.openpi.io`
translates between the two at the I/O boundary, so openpi checkpoints load unchanged.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import einops
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from pi0lite import lora
from pi0lite.config import GemmaConfig
from pi0lite.init import fan_in_normal, normal
from pi0lite.remat import LayerIndex, run_layers
from pi0lite.masks import MASK_VALUE
from pi0lite.norms import make_norm, rms_norm

__all__ = [
    "Embedder", "Expert", "ExpertAttention", "FeedForward", "Gemma", "KVCache", "LayerKV",
    "apply_rope", "attention_weights", "check_experts_agree", "rms_norm",
]

#: Keys and values of every layer: ``(k, v)``, each ``[l, b, s, k, h]`` (``_s``: a cache that is
#: prepended has fewer slots than the mask's keys ``s``).
KVCache = tuple[Float[Array, "l b _s k h"], Float[Array, "l b _s k h"]]
#: Keys and values of one layer: ``(k, v)``, each ``[b, s, k, h]`` (``_s`` as above).
LayerKV = tuple[Float[Array, "b _s k h"], Float[Array, "b _s k h"]]
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
    logits = jnp.einsum("bkqh,bskh->bkqs", q, k, preferred_element_type=jnp.float32)  # q = (g t)
    logits = einops.rearrange(logits, "b k (g t) s -> b (k g) t s", t=length)
    logits = jnp.where(mask[:, None, :, :], logits, MASK_VALUE)
    return jax.nn.softmax(logits, axis=-1)


def attend(probs: Float[Array, "b n t s"], v: Float[Array, "b s k h"]) -> Float[Array, "b t n h"]:
    """The probability-weighted sum of values; each kv head serves its g query heads."""
    length = probs.shape[2]
    grouped = einops.rearrange(probs.astype(v.dtype), "b (k g) t s -> b k (g t) s", k=v.shape[2])
    out = jnp.einsum("bkqs,bskh->bkqh", grouped, v)  # q = (g t)
    return einops.rearrange(out, "b k (g t) h -> b t (k g) h", t=length)


def gelu_tanh(x: Float[Array, "*any"]) -> Float[Array, "*any"]:
    return jax.nn.gelu(x, approximate=True)


def check_experts_agree(configs: Sequence[GemmaConfig]) -> None:
    """The experts share one attention per layer: same depth, heads, kv heads and head dim."""
    if not configs:
        raise ValueError("Gemma needs at least one expert config, got none")

    def shared(c: GemmaConfig) -> dict[str, int]:
        return {"depth": c.depth, "num_heads": c.num_heads, "num_kv_heads": c.num_kv_heads, "head_dim": c.head_dim}

    first = shared(configs[0])
    for i, c in enumerate(configs[1:], start=1):
        for name, value in shared(c).items():
            if value != first[name]:
                raise ValueError(
                    f"expert {i} has {name}={value} but expert 0 has {name}={first[name]}: experts share one "
                    "attention per layer, so depth, num_heads, num_kv_heads and head_dim must agree"
                )


# --- parameter holders ---------------------------------------------------------------------


class Einsum(nnx.Module):
    """A weight ``w`` used in an einsum (openpi's name for every Gemma projection).

    With ``lora_rank > 0`` it also holds openpi's LoRA factors ``lora_a`` / ``lora_b`` and
    ``__call__`` adds the low-rank path (:mod:`pi0lite.lora`).
    """

    def __init__(self, shape: tuple[int, ...], fan_in: int, *, rngs: nnx.Rngs, name: str = "",
                 lora_rank: int = 0, lora_alpha: float = 1.0):
        self.w = fan_in_normal(rngs, shape, fan_in)
        self.name, self.lora_rank = name, lora_rank
        if lora_rank:
            self.lora_a, self.lora_b = lora.make_factors(rngs, shape, lora_rank)
            self.lora_scale = lora.scaling(name, lora_rank, lora_alpha)

    def __call__(self, eqn: str, x: Float[Array, "..."], layer: LayerIndex) -> Float[Array, "..."]:
        y = jnp.einsum(eqn, x, self.w[layer].astype(x.dtype))
        if self.lora_rank:
            y = y + lora.lora_path(self.name, x, self.lora_a[layer], self.lora_b[layer], self.lora_scale)
        return y


class FeedForward(nnx.Module):
    """GeGLU: ``(gelu_tanh(x·G₀) ⊙ (x·G₁))·W``, weights stacked over layers."""

    def __init__(self, depth: int, width: int, mlp_dim: int, *, rngs: nnx.Rngs, lora_rank: int = 0):
        self.gating_einsum = fan_in_normal(rngs, (depth, 2, width, mlp_dim), width)
        self.linear = fan_in_normal(rngs, (depth, mlp_dim, width), mlp_dim)
        self.lora_rank = lora_rank
        if lora_rank:  # openpi's names; no alpha/rank scaling in openpi's FeedForward
            self.gating_einsum_lora_a, self.gating_einsum_lora_b = lora.make_factors(
                rngs, (depth, 2, width, mlp_dim), lora_rank)
            self.linear_lora_a, self.linear_lora_b = lora.make_factors(rngs, (depth, mlp_dim, width), lora_rank)

    def __call__(self, x: Float[Array, "b t d"], layer: LayerIndex) -> Float[Array, "b t d"]:
        gating = jnp.einsum("btd,cdf->cbtf", x, self.gating_einsum[layer].astype(x.dtype))  # c = 2: gate, up
        if self.lora_rank:
            gating = gating + lora.lora_path(
                "gating_einsum", x, self.gating_einsum_lora_a[layer], self.gating_einsum_lora_b[layer], 1.0)
        gate, up = gating
        h = gelu_tanh(gate) * up
        out = jnp.einsum("btf,fd->btd", h, self.linear[layer].astype(x.dtype))
        if self.lora_rank:
            out = out + lora.lora_path("linear", h, self.linear_lora_a[layer], self.linear_lora_b[layer], 1.0)
        return out


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


class ExpertAttention(nnx.Module):
    """One expert's attention projections for every layer (the attention itself is shared)."""

    def __init__(self, c: GemmaConfig, *, rngs: nnx.Rngs):
        l, n, k, h, d = c.depth, c.num_heads, c.num_kv_heads, c.head_dim, c.width
        lora_args = {"lora_rank": c.lora_rank, "lora_alpha": c.lora_alpha}
        self.q_einsum = Einsum((l, n, d, h), d, rngs=rngs, name="q_einsum", **lora_args)
        self.kv_einsum = Einsum((l, 2, k, d, h), d, rngs=rngs, name="kv_einsum", **lora_args)
        self.attn_vec_einsum = Einsum((l, n, h, d), n * h, rngs=rngs, name="attn_vec_einsum", **lora_args)

    def qkv(
        self, x: Float[Array, "b t d"], layer: LayerIndex
    ) -> tuple[Float[Array, "b t n h"], Float[Array, "b t k h"], Float[Array, "b t k h"]]:
        """This expert's queries, keys and values (before RoPE) for its own tokens."""
        q = self.q_einsum("btd,ndh->btnh", x, layer)
        k, v = self.kv_einsum("btd,ckdh->cbtkh", x, layer)  # c = 2: k, v
        return q, k, v

    def out(self, y: Float[Array, "b t n h"], layer: LayerIndex) -> Float[Array, "b t d"]:
        """Heads back to this expert's width."""
        return self.attn_vec_einsum("btnh,nhd->btd", y, layer)


class Expert(nnx.Module):
    """All weights of one expert: pre-norm blocks stacked over depth, then a final norm.

    ``adarms=True`` (pi0.5's action expert) makes every norm adaptive (:class:`pi0lite.norms.AdaRMSNorm`).
    """

    def __init__(self, config: GemmaConfig, *, attn: ExpertAttention, mlp: FeedForward, adarms: bool = False):
        self.config = config
        lead = (config.depth,)
        self.pre_attention_norm = make_norm(lead, config.width, adarms)
        self.attn = attn
        self.pre_ffw_norm = make_norm(lead, config.width, adarms)
        self.mlp = mlp
        self.final_norm = make_norm((), config.width, adarms)


def validate_call(xs, positions, mask, kv_cache, cache_index, configs) -> None:
    """Check a ``Gemma.__call__`` before any einsum, naming the argument that is wrong.

    ``positions`` is ``[b, t]`` (t = new tokens of all experts); ``mask`` is ``[b, t, keys]``
    where keys = t without a cache, the cache's ``slots`` when ``cache_index`` writes into a
    fixed buffer, and ``slots + t`` when the new keys are appended (``cache_index=None``).
    """
    live = [x for x in xs if x is not None]
    if not live:
        raise ValueError("xs: every expert input is None; give at least one [batch, tokens, width] array")
    b, t = live[0].shape[0], sum(x.shape[1] for x in live)
    if tuple(positions.shape) != (b, t):
        raise ValueError(f"positions must be [batch, new tokens] = {(b, t)} (one RoPE position per new token), got {tuple(positions.shape)}")
    if kv_cache is None:
        if cache_index is not None:
            raise ValueError("cache_index is given but kv_cache is None: cache_index says where to write into kv_cache")
        keys, how = t, "no kv_cache: the keys are the new tokens"
    else:
        c = configs[0]
        want = (c.depth, b, None, c.num_kv_heads, c.head_dim)
        pair = isinstance(kv_cache, (tuple, list)) and len(kv_cache) == 2
        if not pair or any(np.ndim(a) != 5 for a in kv_cache) or tuple(np.shape(kv_cache[0])) != tuple(np.shape(kv_cache[1])) or any(
            w is not None and w != g for w, g in zip(want, np.shape(kv_cache[0]))
        ):
            got = [tuple(np.shape(a)) for a in kv_cache] if isinstance(kv_cache, (tuple, list)) else type(kv_cache).__name__
            raise ValueError(f"kv_cache must be a (keys, values) pair, each [depth, batch, slots, kv heads, head dim] = "
                             f"{tuple('slots' if w is None else w for w in want)}, got {got}")
        slots = np.shape(kv_cache[0])[2]
        if cache_index is None:
            keys, how = slots + t, f"kv_cache without cache_index: the {t} new keys are appended to the {slots} cached ones"
        else:
            keys, how = slots, f"kv_cache with cache_index: the new keys are written into the cache's {slots} slots"
    if tuple(mask.shape) != (b, t, keys):
        raise ValueError(f"mask must be [batch, new tokens, keys] = {(b, t, keys)} ({how}), got {tuple(mask.shape)}")


class Gemma(nnx.Module):
    """The mixture of transformers: ``len(configs)`` experts sharing one attention per layer.

    ``Gemma([cfg])`` is a plain single-expert Gemma (pi0-FAST); ``Gemma([vlm, action])`` is pi0's;
    ``adarms=(False, True)`` gives pi0.5's action expert adaptive norms. Only expert 0 has a
    token embedder. The experts must agree on depth, heads, kv heads and head dim.
    """

    def __init__(
        self,
        configs: Sequence[GemmaConfig],
        *,
        vocab_size: int,
        rngs: nnx.Rngs,
        dtype: str = "float32",
        adarms: Sequence[bool] | None = None,
        scan_layers: bool = False,
        remat: bool = False,
    ):
        configs = tuple(configs)
        self.scan_layers, self.remat = scan_layers, remat
        check_experts_agree(configs)
        adarms = tuple(adarms) if adarms is not None else (False,) * len(configs)
        if len(adarms) != len(configs):
            raise ValueError(f"adarms needs one flag per expert ({len(configs)}), got {adarms}")
        self.configs = configs
        self.adarms = adarms
        self.dtype = jnp.dtype(dtype)
        self.embedder = Embedder(vocab_size, configs[0].width, rngs=rngs)
        # random draws in a fixed order: every expert's attention, then every expert's MLP
        # (the order of earlier pi0lite versions, so a seed still gives the same weights)
        attns = [ExpertAttention(c, rngs=rngs) for c in configs]
        mlps = [FeedForward(c.depth, c.width, c.mlp_dim, rngs=rngs, lora_rank=c.lora_rank) for c in configs]
        self.experts = nnx.List(
            [Expert(c, attn=at, mlp=m, adarms=a) for c, at, m, a in zip(configs, attns, mlps, adarms)]
        )

    @property
    def depth(self) -> int:
        return self.configs[0].depth

    def attention(
        self,
        xs: Sequence[Float[Array, "b _t _d"] | None],
        *,
        layer: LayerIndex,
        positions: Int[Array, "b t"],
        mask: Bool[Array, "b t s"],
        cache: LayerKV | None = None,
        cache_index: int | Int[Array, ""] | None = None,
        record: bool = False,
    ) -> tuple[list[Float[Array, "b _t _d"] | None], LayerKV]:
        """One shared attention over the concatenated experts (already normed inputs ``xs``).

        ``cache``: this layer's cached keys/values. With ``cache_index=None`` they are prepended
        (pi0's suffix steps); with an index the new keys/values are written into the fixed-size
        buffer at that slot (autoregressive decoding, static shapes). ``record=True`` sows the
        probabilities ``[b, n, t, s]`` as ``attn_probs`` (read them with ``nnx.capture``).
        Returns each expert's output (None where its input is None) and this layer's ``(k, v)``.
        """
        present = [(expert, x) for expert, x in zip(self.experts, xs) if x is not None]
        qkv = [expert.attn.qkv(x, layer) for expert, x in present]
        q, k, v = (jnp.concatenate(parts, axis=1) for parts in zip(*qkv))  # expert order: prefix first
        q = apply_rope(q, positions) * q.shape[-1] ** -0.5  # scale after RoPE (openpi)
        k = apply_rope(k, positions)
        if cache is not None:
            k_cache, v_cache = cache
            if cache_index is None:
                k = jnp.concatenate([k_cache.astype(k.dtype), k], axis=1)
                v = jnp.concatenate([v_cache.astype(v.dtype), v], axis=1)
            else:
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
        out = attend(probs, v)
        ends = list(itertools.accumulate(x.shape[1] for _, x in present))[:-1]
        pieces = iter(jnp.split(out, ends, axis=1))
        outs = [None if x is None else expert.attn.out(next(pieces), layer) for expert, x in zip(self.experts, xs)]
        return outs, (k, v)

    def block(
        self,
        xs: Sequence[Float[Array, "b _t _d"] | None],
        *,
        layer: LayerIndex,
        conds: Sequence[Float[Array, "b _c"] | Float[Array, "b _q _c"] | None],
        positions: Int[Array, "b t"],
        mask: Bool[Array, "b t s"],
        cache: LayerKV | None = None,
        cache_index: int | Int[Array, ""] | None = None,
        record: bool = False,
    ) -> tuple[list[Float[Array, "b _t _d"] | None], LayerKV]:
        """One pre-norm block: ``x + attn(norm(x))``, then ``x + ffw(norm(x))``, per expert.

        With adaRMS (pi0.5) each sub-layer output is multiplied by the norm's gate first.
        """
        normed = [
            None if x is None else expert.pre_attention_norm(x, layer, cond)
            for expert, x, cond in zip(self.experts, xs, conds)
        ]
        attn_out, kv = self.attention(
            [None if n is None else n[0] for n in normed],
            layer=layer, positions=positions, mask=mask, cache=cache, cache_index=cache_index, record=record,
        )
        new_xs = []
        for expert, x, y, n, cond in zip(self.experts, xs, attn_out, normed, conds):
            if x is None:
                new_xs.append(None)
                continue
            gate = n[1]
            x = x + (y if gate is None else y * gate)
            h, gate = expert.pre_ffw_norm(x, layer, cond)
            y = expert.mlp(h, layer)
            new_xs.append(x + (y if gate is None else y * gate))
        return new_xs, kv

    def __call__(
        self,
        xs: Sequence[Float[Array, "b _t _d"] | None],
        *,
        positions: Int[Array, "b t"],
        mask: Bool[Array, "b t s"],
        kv_cache: KVCache | None = None,
        cache_index: int | Int[Array, ""] | None = None,
        record_attention: bool = False,
        adarms_cond: Sequence[Float[Array, "b _c"] | Float[Array, "b _q _c"] | None] | None = None,
    ) -> tuple[list[Float[Array, "b _t _d"] | None], KVCache]:
        """Run every expert whose input is not None; return final-normed outputs and the (k, v) cache.

        ``adarms_cond[i]`` is the condition of expert i's adaptive norms (pi0.5), else None.
        """
        if len(xs) != len(self.configs):
            raise ValueError(f"xs must be a list with one input (or None) per expert: expected {len(self.configs)}, "
                             f"got {len(xs)} (pass [x] even for a single expert)")
        if all(x is None for x in xs):
            raise ValueError("every expert input is None: nothing to run")
        for i, (x, c) in enumerate(zip(xs, self.configs)):
            if x is not None and (x.ndim != 3 or x.shape[-1] != c.width):
                raise ValueError(f"expert {i} input must be [batch, tokens, {c.width}], got {x.shape}")
        validate_call(xs, positions, mask, kv_cache, cache_index, self.configs)
        xs = [None if x is None else x.astype(self.dtype) for x in xs]
        conds = list(adarms_cond) if adarms_cond is not None else [None] * len(xs)
        def one_layer(xs, layer, cache):
            return self.block(xs, layer=layer, conds=conds, positions=positions, mask=mask,
                              cache=cache, cache_index=cache_index, record=record_attention)

        plain = record_attention  # sow() needs the Python loop without remat
        xs, (ks, vs) = run_layers(one_layer, xs, self.depth, kv_cache, scan=self.scan_layers and not plain,
                                  remat=self.remat and not plain)
        outs = [
            None if x is None else expert.final_norm(x, None, cond)[0]  # the final norm's gate is unused
            for expert, x, cond in zip(self.experts, xs, conds)
        ]
        return outs, (ks, vs)
