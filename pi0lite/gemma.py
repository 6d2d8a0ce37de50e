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
which reads like the maths. The pieces live in their own files: the attention maths (RoPE, masked
grouped-query attention) in :mod:`pi0lite.attention`, the parameter holders (projections,
feed-forward, embedder, :class:`Expert`) in :mod:`pi0lite.gemma_layers`; both are re-exported here.

openpi stores the same weights under one ``layers`` tree with a name suffix per expert
(``layers/attn/q_einsum_1/w`` for ``experts/1/attn/q_einsum/w``); :mod:`pi0lite.openpi.io`
translates between the two at the I/O boundary, so openpi checkpoints load unchanged.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from pi0lite.attention import ROPE_BASE, apply_rope, attend, attention, attention_weights
from pi0lite.config import GemmaConfig
from pi0lite.gemma_layers import Einsum, Embedder, Expert, ExpertAttention, FeedForward, gelu_tanh
from pi0lite.norms import rms_norm
from pi0lite.remat import LayerIndex, run_layers

__all__ = [
    "ROPE_BASE", "Einsum", "Embedder", "Expert", "ExpertAttention", "FeedForward", "Gemma", "KVCache", "LayerKV",
    "apply_rope", "attend", "attention", "attention_weights", "check_experts_agree", "gelu_tanh", "rms_norm",
]

#: Keys and values of every layer: ``(k, v)``, each ``[l, b, s, k, h]`` (``_s``: a cache that is
#: prepended has fewer slots than the mask's keys ``s``).
KVCache = tuple[Float[Array, "l b _s k h"], Float[Array, "l b _s k h"]]
#: Keys and values of one layer: ``(k, v)``, each ``[b, s, k, h]`` (``_s`` as above).
LayerKV = tuple[Float[Array, "b _s k h"], Float[Array, "b _s k h"]]


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
        if record:
            out, probs = attention(q, k, v, mask, return_probs=True)
            self.sow(nnx.Intermediate, "attn_probs", probs)
        else:
            out = attention(q, k, v, mask)
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
