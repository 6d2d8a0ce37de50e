"""Training-time real-time chunking (Black et al. 2025), and the sampling helpers both RTC methods share.

Train with a simulated inference delay: per example a delay ``d`` (:func:`sample_delay`, from
:func:`delay_probs`); the first ``d`` action tokens are given clean (their own time set to the
data end, t = 0) and left out of the loss (:func:`compute_loss_delayed`). At inference they are
set to the previous chunk and only the rest is denoised (:func:`sample_actions_with_prefix`), at
the cost of plain sampling. This needs a time per action token: ``Pi0`` accepts ``time`` of shape
``[b, a]``. The time convention and the inference-time method (guidance): :mod:`pi0lite.rtc`,
which also re-exports these names.

Axis letters (legend in :mod:`pi0lite`): b batch · a action steps (horizon) · j action dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from pi0lite import flow
from pi0lite.observation import Observation, pad_to_dim, validate_observation

__all__ = ["compute_loss_delayed", "delay_probs", "delayed_time", "sample_actions_with_prefix", "sample_delay"]


# --- shared by inference-time and training-time RTC sampling ------------------------------------


def _check_num_steps(num_steps):
    if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")


def _prepare(model, key, obs, prev_chunk, noise):
    """Validated ``(b, velocity-ready prev_chunk [b, a, action_dim], noise)``."""
    cfg = model.config
    validate_observation(cfg, obs)
    b = obs.batch_size
    shape = (b, cfg.action_horizon, cfg.action_dim)
    prev = jnp.asarray(prev_chunk, jnp.float32)
    if prev.ndim != 3 or prev.shape[:2] != shape[:2] or prev.shape[2] > cfg.action_dim:
        raise ValueError(f"prev_chunk must be [batch, action_horizon, <= action_dim] = [{b}, {shape[1]}, "
                         f"<= {cfg.action_dim}], got {tuple(prev.shape)}")
    prev = pad_to_dim(prev, cfg.action_dim)
    if noise is None:
        noise = jax.random.normal(key, shape)
    noise = jnp.asarray(noise, jnp.float32)
    if tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
    return b, prev, noise


def _velocity(model, obs, use_cache):
    """``velocity(x, t)`` with ``t`` of shape [b] or [b, a]; the prefix KV cache is filled once here."""
    if use_cache:
        kv_cache, prefix_mask = model.fill_prefix_cache(obs)
        return lambda x, t: model.velocity_cached(obs, kv_cache, prefix_mask, x, t)
    return lambda x, t: model.forward(obs, x, t)[0]


# --- training-time RTC ------------------------------------------------------------------------


def delay_probs(max_delay: int) -> Float[np.ndarray, "k"]:
    """The training delay distribution over {0, …, max_delay}: ``p(d) ∝ exp(−d / max_delay)``."""
    if max_delay < 0:
        raise ValueError(f"max_delay must be >= 0, got {max_delay}")
    p = np.exp(-np.arange(max_delay + 1) / max(max_delay, 1))
    return p / p.sum()


def sample_delay(key: jax.Array, batch_size: int, max_delay: int) -> Int[Array, "b"]:
    """One simulated delay per example, drawn from :func:`delay_probs`."""
    logits = jnp.log(jnp.asarray(delay_probs(max_delay), jnp.float32))
    return jax.random.categorical(key, logits, shape=(batch_size,)).astype(jnp.int32)


def delayed_time(
    time: Float[ArrayLike, "b"], delay: Int[ArrayLike, "b"] | int, horizon: int
) -> Float[Array, "b a"]:
    """Per-token time: ``0`` (the data end: clean) for the first ``delay`` action tokens, ``time`` after."""
    time = jnp.asarray(time, jnp.float32)
    delay = jnp.broadcast_to(jnp.asarray(delay, jnp.int32), time.shape)
    committed = jnp.arange(horizon)[None, :] < delay[:, None]
    return jnp.where(committed, 0.0, time[:, None])


def compute_loss_delayed(
    model, key: jax.Array, obs: Observation, actions: Float[ArrayLike, "b a _j"], *, max_delay: int,
    delay: Int[ArrayLike, "b"] | None = None, noise: Float[ArrayLike, "b a j"] | None = None,
    time: Float[ArrayLike, "b"] | None = None,
) -> tuple[Float[Array, "b a"], Float[Array, "b a"]]:
    """Training-time RTC loss: ``(per-step loss, mask)``; average as ``sum(loss·mask) / sum(mask)``.

    Per example a delay ``d`` (drawn by :func:`sample_delay` unless given); the first ``d`` action
    tokens are clean (time 0, ``x = actions``) and masked out of the loss; the rest are noised with
    the example's time as in ``Pi0.compute_loss`` (same key split, so ``d = 0`` everywhere gives
    exactly ``compute_loss``). Returns the loss with the committed steps set to 0, and the mask.
    """
    cfg = model.config
    b = obs.batch_size
    actions = pad_to_dim(jnp.asarray(actions, jnp.float32), cfg.action_dim)
    _, noise_key, time_key = jax.random.split(key, 3)  # as Pi0.compute_loss
    if noise is None:
        noise = jax.random.normal(noise_key, actions.shape)
    if time is None:
        time = flow.sample_time(time_key, b)
    if delay is None:
        delay = sample_delay(jax.random.fold_in(key, 1), b, max_delay)
    noise, time, delay = jnp.asarray(noise, jnp.float32), jnp.asarray(time, jnp.float32), jnp.asarray(delay)
    if noise.shape != actions.shape or time.shape != (b,) or delay.shape != (b,):
        raise ValueError(f"noise {noise.shape}, time {time.shape}, delay {delay.shape} must be "
                         f"{actions.shape}, {(b,)}, {(b,)}")
    token_time = delayed_time(time, delay, cfg.action_horizon)  # [b, a]
    x_t = token_time[..., None] * noise + (1.0 - token_time[..., None]) * actions
    v_t, _ = model.forward(obs, x_t, token_time)
    mask = jnp.where(jnp.arange(cfg.action_horizon)[None] < delay[:, None], 0.0, 1.0)
    loss = jnp.mean(jnp.square(v_t - flow.target_velocity(noise, actions)), axis=-1)
    return loss * mask, mask


def sample_actions_with_prefix(
    model, key: jax.Array, obs: Observation, prev_chunk: Float[ArrayLike, "b a _j"], *,
    delay: int | Int[ArrayLike, "b"] | Int[Array, ""], num_steps: int = 10,
    noise: Float[ArrayLike, "b a j"] | None = None, use_cache: bool = True,
) -> Float[Array, "b a j"]:
    """Training-time RTC inference: the first ``delay`` actions are ``prev_chunk``'s (time 0), the
    rest is denoised by plain Euler steps with a per-token time. No guidance, no backward pass.

    ``delay`` is an int, a traced scalar, or one per example ``[b]``. ``delay = 0`` is ``sample_actions``.
    """
    _check_num_steps(num_steps)
    cfg = model.config
    b, prev, noise = _prepare(model, key, obs, prev_chunk, noise)
    committed = jnp.arange(cfg.action_horizon)[None, :] < jnp.broadcast_to(jnp.asarray(delay), (b,))[:, None]
    velocity = _velocity(model, obs, use_cache)
    dt = jnp.float32(-1.0 / num_steps)
    keep = committed[..., None]

    def step(carry, _):
        x, t = carry
        token_time = jnp.where(committed, 0.0, t)  # [b, a]
        x = jnp.where(keep, prev, flow.euler_step(x, velocity(x, token_time), dt))
        return (x, t + dt), None

    (x, _), _ = jax.lax.scan(step, (jnp.where(keep, prev, noise), jnp.float32(1.0)), length=num_steps)
    return x
