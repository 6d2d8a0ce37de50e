"""pi0lite.flow against hand-computed values and scipy's Beta distribution (independent oracles)."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from pi0lite import flow


def test_sample_time_is_beta_1p5_1_squeezed_into_0p001_1():
    t = np.asarray(flow.sample_time(jax.random.key(0), 20_000), np.float64)
    assert t.shape == (20_000,)
    assert t.min() >= 0.001 and t.max() <= 1.0
    # (t - 0.001) / 0.999 ~ Beta(1.5, 1): more weight near t = 1 (noise)
    u = (t - 0.001) / 0.999
    assert scipy.stats.kstest(u, scipy.stats.beta(1.5, 1.0).cdf).pvalue > 1e-3
    assert abs(t.mean() - (0.6 * 0.999 + 0.001)) < 0.01


def test_sample_time_is_the_affine_map_of_a_beta_draw():
    """Same key: t = Beta(1.5, 1)·0.999 + 0.001 exactly (the floor 0.001 and the 0.999 both show)."""
    key = jax.random.key(3)
    beta = np.asarray(jax.random.beta(key, 1.5, 1.0, (64,)), np.float64)
    np.testing.assert_allclose(np.asarray(flow.sample_time(key, 64)), beta * 0.999 + 0.001, rtol=1e-6, atol=1e-7)


def test_euler_step_by_hand():
    x = jnp.array([[[1.0, -2.0]]])
    v = jnp.array([[[0.5, 4.0]]])
    np.testing.assert_allclose(flow.euler_step(x, v, -0.25), [[[0.875, -3.0]]], rtol=1e-6)


def test_posemb_sincos_by_hand():
    # width 4: periods 4e-3 and 4.0; t = 0.5 -> angles 2π·0.5/4e-3 and 2π·0.5/4
    emb = np.asarray(flow.posemb_sincos(jnp.array([0.5]), 4), np.float64)[0]
    angles = np.array([2 * np.pi * 0.5 / 4e-3, 2 * np.pi * 0.5 / 4.0])
    np.testing.assert_allclose(emb, np.concatenate([np.sin(angles), np.cos(angles)]), atol=2e-4)
