"""The parameter holders of a Gemma expert: projections, feed-forward, embedder, norms, stacked over depth.

Axis letters (the package legend, :mod:`pi0lite`): b batch · t tokens · d expert width · n query
heads · k key/value heads · h head dim · f feed-forward hidden size · l layers · v vocabulary.

Every weight has a leading ``l`` axis (openpi's scanned layout); a module is called with the
``layer`` it should use. How the experts are wired together (one shared attention per layer) is
:class:`pi0lite.gemma.Gemma`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int

from pi0lite import lora
from pi0lite.config import GemmaConfig
from pi0lite.init import fan_in_normal, normal
from pi0lite.norms import make_norm
from pi0lite.remat import LayerIndex

__all__ = ["Einsum", "Embedder", "Expert", "ExpertAttention", "FeedForward", "gelu_tanh"]


def gelu_tanh(x: Float[Array, "*any"]) -> Float[Array, "*any"]:
    return jax.nn.gelu(x, approximate=True)



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
