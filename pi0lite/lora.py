"""LoRA on the Gemma einsums, as openpi does it: names, equations, presets, freeze filter.

A frozen weight ``W`` gets two small trainable factors: ``lora_a`` (``W``'s shape with its **last**
axis replaced by the rank ``r``) and ``lora_b`` (its **second-to-last** axis replaced by ``r``), and the
einsum becomes ``x·W + (x·A)·B · alpha/r``. Only ``A`` and ``B`` (plus the parts openpi also trains:
SigLIP and the action projections) receive gradients and optimiser state.

Equations (axis letters of :mod:`pi0lite.gemma`; ``r`` is the rank)::

    q_einsum         btd,ndh->btnh     = btd,ndr->btnr   then btnr,nrh->btnh
    kv_einsum        btd,ckdh->cbtkh   = btd,ckdr->cbtkr then cbtkr,ckrh->cbtkh
    attn_vec_einsum  btnh,nhd->btd     = btnh,nhr->btr   then btr,nrd->btd     (openpi's quirk:
                     the head axis n is summed in both factors, ΔW[n,h,d] = Σ_r A[n,h,r]·Σ_n' B[n',r,d])
    mlp gating       btd,cdf->cbtf     = btd,cdr->cbtr   then cbtr,crf->cbtf   (no alpha/r scaling,
    mlp linear       btf,fd->btd       = btf,fr->btr     then btr,rd->btd       as openpi's FeedForward)

openpi initialises both factors with ``normal(0.01)`` (``lora_b`` is **not** zero: a fresh LoRA model
is not exactly the base model). Presets: ``gemma_2b_lora`` rank 16, alpha 16; ``gemma_300m_lora``
rank 32, alpha 32 (both with LoRA on attention and feed-forward).
"""

from __future__ import annotations

import re

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float

from pi0lite.init import normal

LORA_STD = 0.01  # openpi's init_fn for both factors

#: einsum → (equation of the A factor, equation of the B factor), per-layer weights (no ``l`` axis).
EQUATIONS = {
    "q_einsum": ("btd,ndr->btnr", "btnr,nrh->btnh"),
    "kv_einsum": ("btd,ckdr->cbtkr", "cbtkr,ckrh->cbtkh"),
    "attn_vec_einsum": ("btnh,nhr->btr", "btr,nrd->btd"),
    "gating_einsum": ("btd,cdr->cbtr", "cbtr,crf->cbtf"),
    "linear": ("btf,fr->btr", "btr,rd->btd"),
}
#: The feed-forward's LoRA is not scaled by alpha/rank in openpi.
UNSCALED = ("gating_einsum", "linear")


def factor_shapes(shape: tuple[int, ...], rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(lora_a, lora_b)`` shapes for a weight of ``shape`` (openpi's ``axes=(-2, -1)``)."""
    return shape[:-1] + (rank,), shape[:-2] + (rank, shape[-1])


def make_factors(rngs: nnx.Rngs, shape: tuple[int, ...], rank: int) -> tuple[nnx.Param, nnx.Param]:
    a, b = factor_shapes(shape, rank)
    return nnx.Param(normal(rngs.params(), a, LORA_STD)), nnx.Param(normal(rngs.params(), b, LORA_STD))


def scaling(name: str, rank: int, alpha: float) -> float:
    return 1.0 if name in UNSCALED else alpha / rank


def lora_path(name: str, x: Float[Array, "..."], a, b, scale: float) -> Float[Array, "..."]:
    """The low-rank term ``einsum_B(einsum_A(x, A), B) · scale`` of the einsum ``name``."""
    eqn_a, eqn_b = EQUATIONS[name]
    return jnp.einsum(eqn_b, jnp.einsum(eqn_a, x, a.astype(x.dtype)), b.astype(x.dtype)) * jnp.asarray(scale, x.dtype)


def merged_weight(name: str, w, a, b, scale: float):
    """``W + ΔW``: the dense weight whose einsum equals the base einsum plus the LoRA path.

    Works on per-layer or depth-stacked weights (a leading ``l`` axis is carried along).
    """
    lead = "l" if w.ndim == {"q_einsum": 4, "kv_einsum": 5, "attn_vec_einsum": 4, "gating_einsum": 4,
                             "linear": 3}[name] else ""
    eqn = {
        "q_einsum": "ndr,nrh->ndh",
        "kv_einsum": "ckdr,ckrh->ckdh",
        "gating_einsum": "cdr,crf->cdf",
        "linear": "fr,rd->fd",
    }.get(name)
    if name == "attn_vec_einsum":  # ΔW[n,h,d] = Σ_r A[n,h,r] · Σ_n' B[n',r,d]
        b_sum = jnp.sum(b, axis=-3)  # [.., r, d]
        delta = jnp.einsum(f"{lead}nhr,{lead}rd->{lead}nhd", a, b_sum)
    else:
        ins, out = eqn.split("->")
        ea, eb = ins.split(",")
        delta = jnp.einsum(f"{lead}{ea},{lead}{eb}->{lead}{out}", a, b)
    return w + delta * scale


# --- which parameters train --------------------------------------------------------------

def _path_str(path) -> str:
    return "/".join(str(p) for p in path)


def frozen_filter(paligemma_lora: bool, expert_lora: bool, expert_path=r"llm/experts/1/"):
    """openpi's freeze rule as an NNX filter ``(path, value) -> bool``.

    With a LoRA PaliGemma: freeze every ``llm`` parameter except the action expert's (when the
    expert is not LoRA); with a LoRA expert: freeze the expert; never freeze a ``lora`` parameter.
    SigLIP (``img``) and the action projections are never frozen. ``expert_path`` is the regular
    expression that marks the action expert's parameters in this package's tree.
    """
    expert = re.compile(expert_path)

    def frozen(path, value) -> bool:
        s = _path_str(path)
        if "lora" in s or "llm/" not in s:
            return False
        in_expert = bool(expert.search(s))
        return (paligemma_lora and not in_expert) or (expert_lora and in_expert)

    return frozen


def trainable_filter(config) -> nnx.filterlib.Filter:
    """``nnx.Param`` minus what :func:`frozen_filter` freezes for this ``Pi0Config``."""
    pg, ax = config.paligemma.lora_rank > 0, config.action_expert.lora_rank > 0
    if not (pg or ax):
        return nnx.Param
    return nnx.All(nnx.Param, nnx.Not(frozen_filter(pg, ax)))
