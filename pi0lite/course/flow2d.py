"""A 2-D, two-mode toy for flow matching (notebook 05): "go around the obstacle, left or right".

Axis letters: b batch · h action horizon (1 here) · d action dim (2 here) · w hidden width ·
e time-embedding width.

Data: an observation ``o ~ U(−1, 1)`` and a one-step "action chunk" ``a = (o, ±0.8) + 0.08·ε``:
for every observation there are two equally good actions (pass above or below), never the
average ``(o, 0)``. A regression net trained with MSE predicts exactly that average; a flow
matching net learns both modes. Actions are ``[b, 1, 2]`` (horizon 1, dim 2) so the same
``pi0lite.flow`` functions apply as for pi0's ``[b, H, D]`` chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, Float
from tqdm.auto import tqdm

from pi0lite import flow

MODE_OFFSET = 0.8
MODE_NOISE = 0.08
TIME_EMB_WIDTH = 32

__all__ = ["sample_data", "VelocityNet", "RegressionNet", "flow_matching_loss", "regression_loss",
           "train", "euler_sample"]


def sample_data(key: jax.Array, batch_size: int) -> tuple[Float[Array, " b"], Float[Array, "b 1 2"]]:
    """``(obs, actions)``: obs uniform in [−1, 1], actions ``(o, ±0.8) + 0.08·noise``."""
    k_obs, k_side, k_noise = jax.random.split(key, 3)
    obs = jax.random.uniform(k_obs, (batch_size,), minval=-1.0, maxval=1.0)
    side = jnp.where(jax.random.bernoulli(k_side, 0.5, (batch_size,)), 1.0, -1.0)
    mean = jnp.stack([obs, side * MODE_OFFSET], axis=-1)  # [b, 2]
    actions = mean + MODE_NOISE * jax.random.normal(k_noise, (batch_size, 2))
    return obs, actions[:, None, :]


class _MLP(nnx.Module):
    def __init__(self, d_in: int, width: int, d_out: int, *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(d_in, width, rngs=rngs), nnx.Linear(width, width, rngs=rngs),
                                nnx.Linear(width, d_out, rngs=rngs)])

    def __call__(self, x: Float[Array, "b i"]) -> Float[Array, "b o"]:
        for layer in self.layers[:-1]:
            x = nnx.swish(layer(x))
        return self.layers[-1](x)


class VelocityNet(nnx.Module):
    """``v(x_t, t, o)``: the velocity of the noisy action ``x_t`` at time ``t`` given observation ``o``."""

    def __init__(self, width: int = 128, *, rngs: nnx.Rngs):
        self.mlp = _MLP(2 + 1 + TIME_EMB_WIDTH, width, 2, rngs=rngs)

    def __call__(self, x_t: Float[Array, "b 1 2"], time: Float[Array, " b"], obs: Float[Array, " b"]) -> Float[Array, "b 1 2"]:
        emb = flow.posemb_sincos(time, TIME_EMB_WIDTH, min_period=4e-3, max_period=4.0)  # [b, e]
        features = jnp.concatenate([x_t[:, 0, :], obs[:, None], emb], axis=-1)
        return self.mlp(features)[:, None, :]


class RegressionNet(nnx.Module):
    """``a(o)``: one action per observation, trained with MSE (the baseline that averages modes)."""

    def __init__(self, width: int = 128, *, rngs: nnx.Rngs):
        self.mlp = _MLP(1, width, 2, rngs=rngs)

    def __call__(self, obs: Float[Array, " b"]) -> Float[Array, "b 1 2"]:
        return self.mlp(obs[:, None])[:, None, :]


def flow_matching_loss(model: VelocityNet, key: jax.Array, obs, actions, *, noise=None, time=None) -> Float[Array, ""]:
    """Mean of ``(v(x_t, t, o) − (noise − actions))²`` with openpi's time convention."""
    k_noise, k_time = jax.random.split(key)
    noise = jax.random.normal(k_noise, actions.shape) if noise is None else noise
    time = flow.sample_time(k_time, actions.shape[0]) if time is None else time
    x_t = flow.interpolate(noise, actions, time)  # x_t = t·noise + (1 − t)·actions
    u_t = flow.target_velocity(noise, actions)  # u_t = noise − actions
    return jnp.mean((model(x_t, time, obs) - u_t) ** 2)


def regression_loss(model: RegressionNet, key: jax.Array, obs, actions) -> Float[Array, ""]:
    """Plain MSE between the predicted and the demonstrated action (``key`` unused)."""
    del key
    return jnp.mean((model(obs) - actions) ** 2)


def train(
    model: nnx.Module,
    loss_fn: Callable,
    key: jax.Array,
    *,
    steps: int = 2000,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    chunk: int = 250,
    progress: bool = True,
) -> np.ndarray:
    """Train ``model`` in place with Adam on fresh toy batches; returns the per-step losses.

    ``loss_fn(model, key, obs, actions)`` is :func:`flow_matching_loss` or :func:`regression_loss`.
    Steps run inside ``jax.lax.scan`` in chunks of ``chunk`` (one progress-bar tick each).
    """
    if steps % chunk:
        raise ValueError(f"steps ({steps}) must be a multiple of chunk ({chunk})")
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    def step(state, key):
        model, optimizer = nnx.merge(graphdef, state)
        k_data, k_loss = jax.random.split(key)
        obs, actions = sample_data(k_data, batch_size)
        loss, grads = nnx.value_and_grad(lambda m: loss_fn(m, k_loss, obs, actions))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    run_chunk = jax.jit(lambda state, keys: jax.lax.scan(step, state, keys))
    losses = []
    keys = jax.random.split(key, steps).reshape(steps // chunk, chunk)
    for chunk_keys in tqdm(keys, desc="training", disable=not progress, leave=False):
        state, chunk_losses = run_chunk(state, chunk_keys)
        losses.append(np.asarray(chunk_losses))
    nnx.update((model, optimizer), state)
    return np.concatenate(losses)


def euler_sample(
    velocity_fn: Callable[[Array, Array], Array],
    noise: Float[Array, "b h d"],
    num_steps: int = 10,
    *,
    return_trajectory: bool = False,
):
    """Integrate ``dx/dt = v(x, t)`` from t = 1 (noise) to t = 0 (data) with ``num_steps`` Euler steps.

    ``velocity_fn(x [b, h, d], time [b]) -> [b, h, d]``. Returns ``x_0`` or, with
    ``return_trajectory``, ``(x_0, trajectory [num_steps + 1, b, h, d])`` starting at the noise.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dt = -1.0 / num_steps
    x = jnp.asarray(noise)
    trajectory = [x]
    for i in range(num_steps):
        time = jnp.full((x.shape[0],), 1.0 + i * dt, dtype=x.dtype)  # 1, 1 − 1/N, …, 1/N
        x = flow.euler_step(x, velocity_fn(x, time), dt)  # x ← x + dt·v(x, t)
        trajectory.append(x)
    return (x, jnp.stack(trajectory)) if return_trajectory else x
