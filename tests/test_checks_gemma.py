"""The notebook-03 checks accept correct answers and reject the usual wrong ones (with the right hint)."""

import einops
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite import gemma
from pi0lite.course.checks import check_attention, check_geglu, check_rms_norm, check_rope
from pi0lite.masks import MASK_VALUE


def _rejects(check, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        check(fn)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# --- RMSNorm ---------------------------------------------------------------------------------


def test_rms_norm_accepts_reference(capsys):
    check_rms_norm(gemma.rms_norm)
    assert capsys.readouterr().out.strip() == "✓ rms_norm: 6/6 cases passed"


def test_rms_norm_rejects_plain_scale():
    _rejects(check_rms_norm, lambda x, s: x * jax.lax.rsqrt(jnp.mean(x**2, -1, keepdims=True) + 1e-6) * s, "(1 + scale)")


def test_rms_norm_rejects_layer_norm():
    def layer_norm(x, s):
        c = x - x.mean(-1, keepdims=True)
        return c * jax.lax.rsqrt(jnp.mean(c**2, -1, keepdims=True) + 1e-6) * (1 + s)

    _rejects(check_rms_norm, layer_norm, "does not subtract the mean")


def test_rms_norm_rejects_wrong_axis_and_eps():
    _rejects(check_rms_norm, lambda x, s: x * jax.lax.rsqrt(jnp.mean(x**2, 0, keepdims=True) + 1e-6) * (1 + s), "case")
    _rejects(check_rms_norm, lambda x, s: x / (jnp.sqrt(jnp.mean(x**2, -1, keepdims=True)) + 1e-6) * (1 + s), "inside the square root")


# --- RoPE ------------------------------------------------------------------------------------


def test_rope_accepts_reference(capsys):
    check_rope(gemma.apply_rope)
    assert "✓ apply_rope: 5/5" in capsys.readouterr().out


def _rope(x, positions, *, interleave=False, sign=1.0, use_positions=True):
    h = x.shape[-1]
    theta = positions[..., None, None] * 10_000.0 ** (-2 * jnp.arange(h // 2) / h)
    if not use_positions:
        theta = jnp.zeros_like(theta)
    sin, cos = sign * jnp.sin(theta), jnp.cos(theta)
    if interleave:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return einops.rearrange(jnp.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1), "... j two -> ... (j two)")
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def test_rope_accepts_own_solution(capsys):
    check_rope(_rope)
    assert "✓" in capsys.readouterr().out


def test_rope_rejects_interleaved():
    _rejects(check_rope, lambda x, p: _rope(x, p, interleave=True), "half-split")


def test_rope_rejects_flipped_sign_and_ignored_positions():
    _rejects(check_rope, lambda x, p: _rope(x, p, sign=-1.0), "wrong sign")
    _rejects(check_rope, lambda x, p: _rope(x, p, use_positions=False), "unit vector e0 at position 1")


# --- attention -------------------------------------------------------------------------------


def _attention(q, k, v, mask, *, fill=MASK_VALUE, axis=-1, scale=True, kv_of_head="block", transpose=False):
    g = q.shape[2] // k.shape[2]
    if kv_of_head == "block":  # query head n uses kv head n // g (openpi's reshape)
        k, v = (jnp.repeat(a, g, axis=2) for a in (k, v))
    else:  # wrong: kv head n % K
        k, v = (jnp.tile(a, (1, 1, g, 1)) for a in (k, v))
    logits = jnp.einsum("btnh,bsnh->bnts", q, k) * (q.shape[-1] ** -0.5 if scale else 1.0)
    if transpose:
        mask = jnp.swapaxes(mask, 1, 2)
    probs = jax.nn.softmax(jnp.where(mask[:, None], logits, fill), axis=axis)
    return jnp.einsum("bnts,bsnh->btnh", probs, v)


def test_attention_accepts_solution(capsys):
    check_attention(_attention)
    assert "✓ attention: 5/5" in capsys.readouterr().out


def test_attention_rejects_softmax_over_queries():
    _rejects(check_attention, lambda *a: _attention(*a, axis=-2), "over the *keys*")


def test_attention_rejects_minus_inf():
    _rejects(check_attention, lambda *a: _attention(*a, fill=-jnp.inf), "NaN", "MASK_VALUE")


def test_attention_rejects_missing_scale_transposed_mask_and_head_grouping():
    _rejects(check_attention, lambda *a: _attention(*a, scale=False), "1/sqrt(head_dim)")
    _rejects(check_attention, lambda *a: _attention(*a, transpose=True), "transpose")
    _rejects(check_attention, lambda *a: _attention(*a, kv_of_head="modulo"), "n // g")


# --- GeGLU -----------------------------------------------------------------------------------


def _geglu(x, wg, wl, *, act=lambda z: jax.nn.gelu(z, approximate=True), swap=False):
    gate, up = (wg[1], wg[0]) if swap else (wg[0], wg[1])
    return (act(x @ gate) * (x @ up)) @ wl


def test_geglu_accepts_solution(capsys):
    check_geglu(_geglu)
    assert "✓ geglu: 3/3" in capsys.readouterr().out


def test_geglu_matches_feed_forward_module():
    from flax import nnx

    ff = gemma.FeedForward(1, 4, 8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 3, 4))
    expected = _geglu(x, ff.gating_einsum[0], ff.linear[0])
    np.testing.assert_allclose(ff(x, 0), expected, atol=1e-5)


def test_attention_reference_matches_package_weights():
    from pi0lite.course.checks.gemma import reference_attention

    q, k, v = (jax.random.normal(jax.random.key(i), s) for i, s in enumerate([(2, 3, 4, 8), (2, 5, 2, 8), (2, 5, 2, 8)]))
    mask = jax.random.bernoulli(jax.random.key(9), 0.6, (2, 3, 5))
    probs = gemma.attention_weights(q * 8**-0.5, k, mask)  # [b, n, t, s]
    out = jnp.einsum("bnts,bsnh->btnh", probs, jnp.repeat(v, 2, axis=2))
    np.testing.assert_allclose(reference_attention(q, k, v, mask), out, atol=1e-5)


def test_geglu_rejects_swapped_branches_and_exact_gelu():
    _rejects(check_geglu, lambda *a: _geglu(*a, swap=True), "gate branch")
    _rejects(check_geglu, lambda *a: _geglu(*a, act=lambda z: jax.nn.gelu(z, approximate=False)), "tanh approximation")
    _rejects(check_geglu, lambda *a: _geglu(*a, act=jax.nn.relu), "case")
