"""Checks for notebook 04 (the mixture of transformers): joint attention and parameter counting.

Axis letters: b batch, t tokens of one expert, T all tokens (experts concatenated), n query heads,
k key/value heads, h head dim.

References: joint attention = concatenate every expert's q/k/v along the sequence, attend once
(``pi0lite.course.checks.gemma.reference_attention``), split the output back; the parameter count of one
expert comes from an abstract ``pi0lite.gemma.Gemma`` built with ``nnx.eval_shape`` (no memory).
"""

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from pi0lite.course.checks._cases import Case, compare, random_normal, run_cases
from pi0lite.course.checks.gemma import reference_attention
from pi0lite.config import GEMMA_2B, GEMMA_300M, GEMMA_DUMMY, TINY, GemmaConfig

__all__ = ["check_joint_attention", "check_expert_param_count", "expert_param_count"]


# --- joint attention -------------------------------------------------------------------------


def _joint(qs, ks, vs, mask, *, separate=False, reverse=False) -> list[np.ndarray]:
    """The reference (and two classic mistakes: attending per expert, concatenating in reverse)."""
    lengths = [q.shape[1] for q in qs]
    if separate:  # each expert attends only to itself (no shared attention)
        outs, start = [], 0
        for q, k, v, t in zip(qs, ks, vs, lengths):
            outs.append(reference_attention(q, k, v, mask[:, start : start + t, start : start + t]))
            start += t
        return outs
    order = list(reversed(range(len(qs)))) if reverse else list(range(len(qs)))
    cat = [np.concatenate([np.asarray(a[i]) for i in order], axis=1) for a in (qs, ks, vs)]
    out = reference_attention(*cat, mask)
    pieces, start = {}, 0
    for i in order:
        pieces[i] = out[:, start : start + lengths[i]]
        start += lengths[i]
    return [pieces[i] for i in range(len(qs))]


def _mot_case(name: str, seed: int, lengths: Sequence[int], heads=2, kv=1, h=4, mask=None) -> Case:
    total = sum(lengths)
    if mask is None:
        mask = np.ones((1, total, total), bool)
    b = mask.shape[0]
    qs = [random_normal(seed + 3 * i, (b, t, heads, h)) for i, t in enumerate(lengths)]
    ks = [random_normal(seed + 3 * i + 1, (b, t, kv, h)) for i, t in enumerate(lengths)]
    vs = [random_normal(seed + 3 * i + 2, (b, t, kv, h)) for i, t in enumerate(lengths)]

    def mistakes():  # computed only for a wrong answer
        found = {
            "The experts share ONE attention: concatenate all q/k/v along the token axis first "
            "(einops.pack(qs, 'b * n h')) so prefix and suffix tokens can attend to each other.": _joint(
                qs, ks, vs, mask, separate=True
            ),
        }
        if len(lengths) > 1:
            found[
                "Keep the expert order: expert 0 (prefix) first, then expert 1 — the mask and the "
                "positions are built for that order; unpack with the same packed shapes."
            ] = _joint(qs, ks, vs, mask, reverse=True)
        return found

    args = ([jnp.asarray(a) for a in qs], [jnp.asarray(a) for a in ks], [jnp.asarray(a) for a in vs], jnp.asarray(mask))
    return Case(name=name, args=args, expected=_joint(qs, ks, vs, mask), mistakes=mistakes, atol=1e-4, rtol=1e-4)


def _pi0_like_mask(prefix_valid: Sequence[int], suffix_len: int) -> np.ndarray:
    from pi0lite.masks import make_attn_mask, suffix_ar_mask

    input_mask = np.array([list(prefix_valid) + [1] * suffix_len], bool)
    ar = np.concatenate([np.zeros(len(prefix_valid), bool), suffix_ar_mask(suffix_len - 1)])
    return np.asarray(make_attn_mask(input_mask, ar))


def _compare_list(fn_name: str, case: Case, got) -> None:
    if not isinstance(got, (list, tuple)):
        raise AssertionError(
            f"{fn_name}, case '{case.name}': return a list with one output per expert, got {type(got).__name__}"
            "\nHint: einops.unpack returns a list."
        )
    if len(got) != len(case.expected):
        raise AssertionError(
            f"{fn_name}, case '{case.name}': expected {len(case.expected)} outputs (one per expert), got {len(got)}"
        )
    for i, (g, e) in enumerate(zip(got, case.expected)):
        sub = Case(
            name=f"{case.name}, expert {i}",
            args=case.args,
            expected=e,
            mistakes=lambda i=i: {hint: wrong[i] for hint, wrong in case.mistakes().items()},
            atol=case.atol,
            rtol=case.rtol,
        )
        compare(fn_name, sub, g, generic_hint="pack q/k/v over experts, attend once with the full mask, unpack.")


def check_joint_attention(fn: Callable) -> None:
    """Exercise 4.1: ``fn(qs, ks, vs, mask) -> outs`` — lists with one ``[b, t_i, ...]`` per expert.

    qs[i] ``[b, t_i, n, h]``, ks[i] / vs[i] ``[b, t_i, k, h]``, mask bool ``[b, T, T]`` with
    ``T = Σ t_i``; outs[i] ``[b, t_i, n, h]`` is expert i's slice of one shared attention.
    """
    cases = [
        _mot_case("one expert (plain attention)", 100, [4]),
        _mot_case("two experts, full attention", 110, [3, 2]),
        _mot_case("pi0 layout: prefix with padding, state, actions", 120, [4, 3], mask=_pi0_like_mask([1, 1, 1, 0], 3)),
        _mot_case("three experts, 4 heads / 2 kv heads", 130, [2, 3, 1], heads=4, kv=2),
    ]
    run_cases("joint_attention", fn, cases, compare_fn=_compare_list)


# --- parameter counting ----------------------------------------------------------------------


def expert_param_count(cfg: GemmaConfig) -> int:
    """Parameters of one expert's transformer stack + final norm (no embedder), by ``nnx.eval_shape``."""
    from flax import nnx

    from pi0lite.gemma import Gemma

    abstract = nnx.eval_shape(lambda: Gemma([cfg], vocab_size=1, rngs=nnx.Rngs(0)))
    leaves = nnx.to_flat_state(nnx.state(abstract, nnx.Param))
    return int(sum(int(np.prod(v.shape)) for path, v in leaves if "embedder" not in map(str, path)))


def _count_formula(cfg: GemmaConfig, *, kv_heads=None, gating=2, norms=True) -> int:
    d, n, h, f = cfg.width, cfg.num_heads, cfg.head_dim, cfg.mlp_dim
    k = cfg.num_kv_heads if kv_heads is None else kv_heads
    per_layer = n * d * h + 2 * k * d * h + n * h * d + gating * d * f + f * d + (2 * d if norms else 0)
    return cfg.depth * per_layer + (d if norms else 0)


def check_expert_param_count(fn: Callable) -> None:
    """Exercise 4.2: ``fn(cfg: GemmaConfig) -> int``, the parameters of one expert (no embedder)."""
    configs = [
        ("openpi dummy", GEMMA_DUMMY),
        ("TINY action expert", TINY.action_expert),
        ("grouped-query toy (4 heads, 2 kv heads)", GemmaConfig(width=8, depth=2, mlp_dim=16, num_heads=4, num_kv_heads=2, head_dim=4)),
        ("gemma_300m (pi0 action expert)", GEMMA_300M),
        ("gemma_2b (pi0 VLM, without embedder)", GEMMA_2B),
    ]
    cases = [
        Case(
            name=name,
            args=(cfg,),
            expected=np.int64(expert_param_count(cfg)),
            mistakes={
                "Keys and values have num_kv_heads heads (1 in pi0: multi-query), not num_heads.": _count_formula(
                    cfg, kv_heads=cfg.num_heads
                ),
                "GeGLU has two input matrices (gate and up: gating_einsum is [2, d, f]) plus the output [f, d].": (
                    _count_formula(cfg, gating=1)
                ),
                "Count the RMSNorm scales: two per layer (pre-attention, pre-feed-forward) and the final norm.": (
                    _count_formula(cfg, norms=False)
                ),
                "Add the final RMSNorm after the last layer: one more scale vector of width d.": (
                    _count_formula(cfg) - cfg.width
                ),
            },
            atol=0.0,
            rtol=0.0,
        )
        for name, cfg in configs
    ]
    run_cases(
        "expert_param_count",
        fn,
        cases,
        generic_hint="per layer: q n·d·h, kv 2·k·d·h, out n·h·d, GeGLU 2·d·f + f·d, 2 norms of d; plus a final norm.",
    )
