"""Checks for notebook 03 (the Gemma block): RMSNorm, RoPE, masked multi-query attention, GeGLU.

Axis letters: b batch, t query tokens, s key tokens, n query heads, k key/value heads,
g query heads per kv head (n = k·g), h head dim, d width, f GeGLU hidden size.

References: ``pi0lite.gemma.rms_norm`` and ``pi0lite.gemma.apply_rope`` (imported when a check
runs); attention and GeGLU are written here in their plainest form, because the package computes
them inside modules (``Gemma``, ``FeedForward``); ``tests/test_checks_gemma.py`` ties these
references to the modules. Each check also knows the usual wrong answers and names them in its hint.
"""

from collections.abc import Callable

import einops
import jax
import jax.numpy as jnp
import numpy as np

from pi0lite.course.checks._cases import Case, compare, random_normal, run_cases
from pi0lite.masks import MASK_VALUE

__all__ = ["check_rms_norm", "check_rope", "check_attention", "check_geglu"]


# --- references and known mistakes -----------------------------------------------------------


def _rms_norm(x, scale):
    from pi0lite.gemma import rms_norm

    return np.asarray(rms_norm(jnp.asarray(x), jnp.asarray(scale)))


def _rms_mistakes(x, scale) -> dict[str, np.ndarray]:
    x64, s64 = np.asarray(x, np.float64), np.asarray(scale, np.float64)
    ms = np.mean(x64**2, axis=-1, keepdims=True)
    centred = x64 - x64.mean(-1, keepdims=True)
    return {
        "Gemma's RMSNorm multiplies by (1 + scale): the stored scale is an offset from 1 "
        "(initialised to 0).": x64 / np.sqrt(ms + 1e-6) * s64,
        "RMSNorm does not subtract the mean (that is LayerNorm): divide x by sqrt(mean(x²) + eps).": (
            centred / np.sqrt(np.mean(centred**2, -1, keepdims=True) + 1e-6) * (1 + s64)
        ),
        "eps = 1e-6 goes inside the square root: x / sqrt(mean(x²) + eps).": x64
        / (np.sqrt(ms) + 1e-6)
        * (1 + s64),
    }


def _rope(x, positions):
    from pi0lite.gemma import apply_rope

    return np.asarray(apply_rope(jnp.asarray(x), jnp.asarray(positions)))


def _rope_variant(x, positions, *, interleaved=False, sign=1.0, base=10_000.0):
    """RoPE in float64 with switchable mistakes (interleaved pairs, flipped rotation, wrong base)."""
    x = np.asarray(x, np.float64)
    hd = x.shape[-1]
    inv_freq = base ** (-2.0 * np.arange(hd // 2) / hd)
    theta = np.asarray(positions, np.float64)[..., None, None] * inv_freq  # (b, t, 1, h/2)
    sin, cos = sign * np.sin(theta), np.cos(theta)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        return out
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _rope_mistakes(x, positions) -> dict[str, np.ndarray]:
    return {
        "pi0/Gemma RoPE is *half-split*: pair x[..., j] with x[..., j + h/2], not the "
        "interleaved neighbours (2j, 2j+1).": _rope_variant(x, positions, interleaved=True),
        "The rotation is [x1·cos − x2·sin, x2·cos + x1·sin]: your sine has the wrong sign.": (
            _rope_variant(x, positions, sign=-1.0)
        ),
        "Frequencies are 10000^(−2j/h) for j < h/2 (base 10000, not 10).": _rope_variant(
            x, positions, base=10.0
        ),
    }


def reference_attention(q, k, v, mask, *, fill=MASK_VALUE, softmax_axis=-1, scale=True, grouped=True):
    """Masked multi-/grouped-query attention: ``softmax(q·kᵀ/√h, masked) · v``; switches make mistakes.

    q [b, t, n, h], k and v [b, s, k, h], mask bool [b, t, s]; query head n uses kv head n // g.
    """
    q, k, v = (jnp.asarray(a, jnp.float32) for a in (q, k, v))
    num_kv = k.shape[2]
    # query head n = k·g + j uses kv head k (blocks); the mistake "grouped=False" uses n mod K
    heads = "b t (k g) h" if grouped else "b t (g k) h"
    q = einops.rearrange(q, f"{heads} -> b t k g h", k=num_kv)
    if scale:
        q = q * q.shape[-1] ** -0.5
    logits = jnp.einsum("btkgh,bskh->bkgts", q, k, precision=jax.lax.Precision.HIGHEST)
    logits = jnp.where(jnp.asarray(mask)[:, None, None], logits, fill)  # (b, k, g, t, s)
    probs = jax.nn.softmax(logits, axis=softmax_axis)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, v, precision=jax.lax.Precision.HIGHEST)
    return np.asarray(einops.rearrange(out, f"b t k g h -> {heads}"))


def _attention_mistakes(q, k, v, mask) -> dict[str, np.ndarray]:
    mask = np.asarray(mask)
    mistakes = {
        "Softmax runs over the *keys* (last axis, s): each query's weights must sum to 1.": (
            reference_attention(q, k, v, mask, softmax_axis=-2)
        ),
        "Scale the logits by 1/sqrt(head_dim) before the softmax.": reference_attention(
            q, k, v, mask, scale=False
        ),
    }
    if k.shape[2] > 1:
        mistakes["Query head n uses kv head n // g (g = n_heads / n_kv_heads consecutive heads share one "
                 "kv head): rearrange q as 'b t (k g) h'."] = reference_attention(q, k, v, mask, grouped=False)
    if mask.shape[1] == mask.shape[2]:
        mistakes["Rows are queries, columns keys: mask[b, t, s] — did you transpose the mask?"] = (
            reference_attention(q, k, v, np.swapaxes(mask, 1, 2))
        )
    return mistakes


def _geglu(x, w_gating, w_linear):
    x, wg, wl = (jnp.asarray(a, jnp.float32) for a in (x, w_gating, w_linear))
    gate = jax.nn.gelu(jnp.einsum("btd,df->btf", x, wg[0], precision="highest"), approximate=True)
    up = jnp.einsum("btd,df->btf", x, wg[1], precision="highest")
    return np.asarray(jnp.einsum("btf,fd->btd", gate * up, wl, precision="highest"))


def _geglu_mistakes(x, w_gating, w_linear) -> dict[str, np.ndarray]:
    swapped = np.stack([w_gating[1], w_gating[0]])
    x64, wg, wl = (np.asarray(a, np.float64) for a in (x, w_gating, w_linear))
    exact = x64 @ wg[0]
    from scipy.special import erf

    gelu_exact = 0.5 * exact * (1 + erf(exact / np.sqrt(2)))
    return {
        "The GELU goes on the gate branch w_gating[0]; w_gating[1] is the linear 'up' branch.": (
            _geglu(x, swapped, w_linear)
        ),
        "Gemma uses the tanh approximation of GELU (jax.nn.gelu(..., approximate=True)).": (
            gelu_exact * (x64 @ wg[1]) @ wl
        ),
    }


# --- checks ----------------------------------------------------------------------------------


def check_rms_norm(fn: Callable) -> None:
    """Exercise 3.1: ``fn(x [..., d], scale [d]) -> [..., d]`` must equal ``pi0lite.gemma.rms_norm``."""
    hand = [
        ("3-4 vector, scale 0", np.array([[3.0, 4.0]], np.float32), np.zeros(2, np.float32)),
        ("3-4 vector, scale 1", np.array([[3.0, 4.0]], np.float32), np.ones(2, np.float32)),
        ("tiny values (eps matters)", np.full((1, 4), 1e-3, np.float32), np.zeros(4, np.float32)),
        ("all zeros", np.zeros((2, 3), np.float32), np.full(3, 0.5, np.float32)),
    ]
    rand = [
        ("random [2, 5, 8]", random_normal(0, (2, 5, 8), 3.0) + 1.0, random_normal(1, (8,), 0.5)),
        ("random [3, 16]", random_normal(2, (3, 16)), random_normal(3, (16,))),
    ]
    cases = [
        Case(
            name=name,
            args=(jnp.asarray(x), jnp.asarray(s)),
            expected=_rms_norm(x, s),
            mistakes=lambda x=x, s=s: _rms_mistakes(x, s),
            atol=1e-5,
            rtol=1e-4,
        )
        for name, x, s in hand + rand
    ]
    run_cases("rms_norm", fn, cases, generic_hint="y = x / sqrt(mean(x², last axis) + 1e-6) · (1 + scale).")


def check_rope(fn: Callable) -> None:
    """Exercise 3.2: ``fn(x [b, t, n, h], positions [b, t]) -> [b, t, n, h]``, half-split RoPE."""
    unit = np.zeros((1, 1, 1, 4), np.float32)
    unit[..., 0] = 1.0
    pos_grid = np.array([[0, 1, 2, 7, 100]], np.int32)
    hand = [
        ("position 0 is the identity", random_normal(10, (1, 3, 2, 8)), np.zeros((1, 3), np.int32)),
        ("unit vector e0 at position 1", unit, np.ones((1, 1), np.int32)),
        ("ones at positions 0,1,2,7,100", np.ones((1, 5, 1, 4), np.float32), pos_grid),
    ]
    rand = [
        ("random, padded positions", random_normal(11, (2, 4, 3, 16)), np.array([[0, 1, 2, 2], [0, 0, 1, 2]], np.int32)),
        ("random, long positions", random_normal(12, (1, 3, 1, 32)), np.array([[5, 300, 4000]], np.int32)),
    ]
    cases = [
        Case(
            name=name,
            args=(jnp.asarray(x), jnp.asarray(p)),
            expected=_rope(x, p),
            mistakes=lambda x=x, p=p: _rope_mistakes(x, p),
            atol=2e-4,
            rtol=1e-4,
        )
        for name, x, p in hand + rand
    ]
    run_cases(
        "apply_rope",
        fn,
        cases,
        generic_hint="θ_j = position · 10000^(−2j/h); out = [x1·cos θ − x2·sin θ, x2·cos θ + x1·sin θ].",
    )


def _attention_cases() -> list[Case]:
    bidir = np.ones((1, 3, 3), bool)
    causal = np.tril(np.ones((3, 3), bool))[None]
    padded = np.array([[1, 1, 1, 0]], bool)
    pad_mask = padded[:, :, None] & padded[:, None, :]  # the last query row is fully masked
    block = np.array([[0, 0, 1, 2, 2]])  # prefix-LM-like blocks
    block_mask = (block[:, None, :] <= block[:, :, None]) & np.ones((2, 5, 5), bool)
    specs = [
        ("1 head, bidirectional", 1, 1, 3, 3, 4, bidir),
        ("2 heads MQA, causal", 2, 1, 3, 3, 4, causal),
        ("padding: a fully masked query row", 2, 1, 4, 4, 4, pad_mask),
        ("4 heads, 2 kv heads (GQA), blocks", 4, 2, 5, 5, 8, block_mask),
        ("cross: 2 queries over 6 keys", 4, 1, 2, 6, 8, random_normal(20, (1, 2, 6)) > -0.5),
    ]
    cases = []
    for i, (name, n, kv, t, s, h, mask) in enumerate(specs):
        b = mask.shape[0]
        q, k, v = random_normal(30 + i, (b, t, n, h)), random_normal(40 + i, (b, s, kv, h)), random_normal(50 + i, (b, s, kv, h))
        cases.append(
            Case(
                name=name,
                args=(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), jnp.asarray(mask)),
                expected=reference_attention(q, k, v, mask),
                mistakes=lambda q=q, k=k, v=v, mask=mask: _attention_mistakes(q, k, v, mask),
                atol=1e-4,
                rtol=1e-4,
            )
        )
    return cases


def _compare_attention(fn_name: str, case: Case, got) -> None:
    """A NaN gets its own message: it is the signature of filling masked logits with -inf."""
    got_arr = np.asarray(got)
    if got_arr.shape == np.shape(case.expected) and got_arr.dtype.kind == "f" and np.isnan(got_arr).any():
        first = tuple(int(i) for i in np.argwhere(np.isnan(got_arr))[0])
        raise AssertionError(
            f"{fn_name}, case '{case.name}': your output contains NaN (first at index {first}).\n"
            "Hint: fill masked logits with the finite pi0lite.masks.MASK_VALUE, not -inf: a fully "
            "masked (padding) row of -inf gives softmax 0/0 = NaN."
        )
    compare(
        fn_name,
        case,
        got,
        generic_hint="logits = q·k/√h per (query head, kv head n // g); where(mask, logits, MASK_VALUE); "
        "softmax over keys; then probs · v.",
    )


def check_attention(fn: Callable) -> None:
    """Exercise 3.3: ``fn(q [b,t,n,h], k [b,s,k,h], v [b,s,k,h], mask bool[b,t,s]) -> [b,t,n,h]``."""
    run_cases("attention", fn, _attention_cases(), compare_fn=_compare_attention)


def check_geglu(fn: Callable) -> None:
    """Exercise 3.4: ``fn(x [b,t,d], w_gating [2,d,f], w_linear [f,d]) -> [b,t,d]`` (Gemma's GeGLU)."""
    cases = []
    for i, (b, t, d, f) in enumerate([(1, 1, 2, 3), (2, 3, 4, 8), (1, 5, 8, 16)]):
        x, wg, wl = random_normal(60 + i, (b, t, d)), random_normal(70 + i, (2, d, f)), random_normal(80 + i, (f, d))
        cases.append(
            Case(
                name=f"random b={b} t={t} d={d} f={f}",
                args=(jnp.asarray(x), jnp.asarray(wg), jnp.asarray(wl)),
                expected=_geglu(x, wg, wl),
                mistakes=lambda x=x, wg=wg, wl=wl: _geglu_mistakes(x, wg, wl),
                atol=1e-4,
                rtol=1e-4,
            )
        )
    run_cases("geglu", fn, cases, generic_hint="out = (gelu_tanh(x·w_gating[0]) ⊙ (x·w_gating[1]))·w_linear.")
