import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import GemmaConfig
from pi0lite.gemma import Gemma, apply_rope, attention_weights, rms_norm
from pi0lite.masks import make_attn_mask, make_positions

CFG_A = GemmaConfig(width=16, depth=2, mlp_dim=32, num_heads=4, num_kv_heads=2, head_dim=8)
CFG_B = GemmaConfig(width=8, depth=2, mlp_dim=16, num_heads=4, num_kv_heads=2, head_dim=8)


def test_rms_norm_uses_one_plus_scale():
    x = jnp.array([[3.0, 4.0]])
    np.testing.assert_allclose(rms_norm(x, jnp.zeros(2)), x / np.sqrt(12.5 + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(rms_norm(x, jnp.ones(2)), 2 * x / np.sqrt(12.5 + 1e-6), rtol=1e-6)


def test_rope_half_split_and_relative():
    x = jax.random.normal(jax.random.key(0), (1, 1, 1, 8))
    at0 = apply_rope(x, jnp.zeros((1, 1), jnp.int32))
    np.testing.assert_allclose(at0, x, atol=1e-6)
    # position 1 rotates pair (0, 4) by exactly 1 radian
    at1 = np.asarray(apply_rope(x, jnp.ones((1, 1), jnp.int32)))[0, 0, 0]
    x0, x4 = np.asarray(x)[0, 0, 0, [0, 4]]
    np.testing.assert_allclose(at1[[0, 4]], [x0 * np.cos(1) - x4 * np.sin(1), x4 * np.cos(1) + x0 * np.sin(1)], atol=1e-6)
    # dot products depend only on the position difference
    q, k = jax.random.normal(jax.random.key(1), (2, 1, 1, 1, 8))
    dot = lambda i, j: float(jnp.sum(apply_rope(q, jnp.full((1, 1), i)) * apply_rope(k, jnp.full((1, 1), j))))
    assert abs(dot(3, 1) - dot(7, 5)) < 1e-5


def test_fully_masked_row_is_uniform_not_nan():
    q = jnp.ones((1, 2, 2, 4))
    k = jnp.ones((1, 3, 1, 4))
    mask = jnp.array([[[True, True, False], [False, False, False]]])
    probs = attention_weights(q, k, mask)
    assert not jnp.isnan(probs).any()
    np.testing.assert_allclose(probs[0, :, 1], 1 / 3, atol=1e-6)
    np.testing.assert_allclose(probs[0, :, 0, 2], 0.0)


@pytest.fixture(scope="module")
def model():
    return Gemma([CFG_A, CFG_B], vocab_size=11, rngs=nnx.Rngs(0))


def _inputs(seed, t_a=5, t_b=3):
    ka, kb = jax.random.split(jax.random.key(seed))
    return jax.random.normal(ka, (2, t_a, 16)), jax.random.normal(kb, (2, t_b, 8))


def test_prefix_outputs_ignore_the_suffix(model):
    xa, xb = _inputs(0)
    _, xb2 = _inputs(1)
    input_mask = jnp.ones((2, 8), bool)
    ar = jnp.array([0, 0, 0, 0, 0, 1, 0, 0])
    kw = dict(positions=make_positions(input_mask), mask=make_attn_mask(input_mask, ar))
    (pa, _), _ = model([xa, xb], **kw)
    (pa2, _), _ = model([xa, xb2], **kw)
    np.testing.assert_allclose(pa, pa2, atol=1e-6)


def test_prepended_cache_equals_joint_pass(model):
    xa, xb = _inputs(2)
    input_mask = jnp.ones((2, 8), bool)
    ar = jnp.array([0, 0, 0, 0, 0, 1, 0, 0])
    full = make_attn_mask(input_mask, ar)
    pos = make_positions(input_mask)
    (_, joint_b), _ = model([xa, xb], positions=pos, mask=full)
    _, cache = model([xa, None], positions=pos[:, :5], mask=full[:, :5, :5])
    assert cache[0].shape == (2, 2, 5, 2, 8)  # [depth, b, s, kv heads, head dim]
    (_, cached_b), _ = model([None, xb], positions=pos[:, 5:], mask=full[:, 5:, :], kv_cache=cache)
    np.testing.assert_allclose(cached_b, joint_b, atol=1e-5)


def test_write_into_fixed_cache(model):
    xa, _ = _inputs(3, t_a=4)
    mask = jnp.tril(jnp.ones((4, 4), bool))[None].repeat(2, 0)
    pos = jnp.arange(4)[None].repeat(2, 0)
    (joint, _), _ = model([xa, None], positions=pos, mask=mask)
    buffer = tuple(jnp.zeros((2, 2, 4, 2, 8)) for _ in range(2))
    _, buffer = model([xa[:, :3], None], positions=pos[:, :3], mask=jnp.pad(mask[:, :3, :3], ((0, 0), (0, 0), (0, 1))), kv_cache=buffer, cache_index=0)
    (last, _), _ = model([xa[:, 3:], None], positions=pos[:, 3:], mask=mask[:, 3:], kv_cache=buffer, cache_index=3)
    np.testing.assert_allclose(last[:, 0], joint[:, 3], atol=1e-5)


def test_records_attention_probabilities(model):
    xa, xb = _inputs(4)
    input_mask = jnp.ones((2, 8), bool)
    run = nnx.capture(model, nnx.Intermediate)
    _, inter = run([xa, xb], positions=make_positions(input_mask), mask=make_attn_mask(input_mask, jnp.zeros(8, bool)), record_attention=True)
    probs = inter["attn_probs"].get_value()
    assert len(probs) == 2 and probs[0].shape == (2, 4, 8, 8)
    np.testing.assert_allclose(jnp.sum(probs[0], -1), 1.0, atol=1e-5)


def test_bad_expert_input_shape(model):
    with pytest.raises(ValueError, match="expert 1 input"):
        model([None, jnp.zeros((2, 3, 16))], positions=jnp.zeros((2, 3), jnp.int32), mask=jnp.ones((2, 3, 3), bool))
