"""The 2-D flow-matching toy: data has two modes, Euler integrates exactly on simple fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.course import flow2d


def test_sample_data_two_modes():
    obs, actions = flow2d.sample_data(jax.random.key(0), 2000)
    assert obs.shape == (2000,) and actions.shape == (2000, 1, 2)
    y = np.asarray(actions[:, 0, 1])
    assert 0.45 < (y > 0).mean() < 0.55
    assert np.abs(np.abs(y) - flow2d.MODE_OFFSET).max() < 0.5
    assert np.allclose(actions[:, 0, 0], obs, atol=0.5)


def test_euler_sample_constant_field_and_trajectory():
    noise = jnp.ones((3, 1, 2))
    x0, traj = flow2d.euler_sample(lambda x, t: jnp.full_like(x, 2.0), noise, 4, return_trajectory=True)
    assert np.allclose(x0, -1.0) and traj.shape == (5, 3, 1, 2) and np.allclose(traj[0], noise)
    with pytest.raises(ValueError, match="num_steps"):
        flow2d.euler_sample(lambda x, t: x, noise, 0)


def test_losses_and_short_training():
    key = jax.random.key(0)
    obs, actions = flow2d.sample_data(key, 8)
    model = flow2d.VelocityNet(16, rngs=nnx.Rngs(0))
    assert model(actions, jnp.full((8,), 0.5), obs).shape == (8, 1, 2)
    loss = flow2d.flow_matching_loss(model, key, obs, actions, noise=actions, time=jnp.zeros(8))
    assert np.isfinite(loss)
    reg = flow2d.RegressionNet(16, rngs=nnx.Rngs(0))
    losses = flow2d.train(reg, flow2d.regression_loss, key, steps=40, batch_size=32, chunk=20, progress=False)
    assert losses.shape == (40,) and losses[-10:].mean() < losses[:10].mean()
    with pytest.raises(ValueError, match="multiple of chunk"):
        flow2d.train(reg, flow2d.regression_loss, key, steps=30, chunk=50, progress=False)
