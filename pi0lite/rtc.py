"""Real-time chunking (RTC): smooth action chunks when inference takes ``delay`` control steps.

A chunked policy keeps executing while the next chunk is computed. The chunk asked for with the
observation of step ``k`` arrives at step ``k + delay``; its first ``delay`` actions are already
*committed* (the previous chunk executes them). Switching naively can jump between modes (left or
right of the obstacle). Two fixes from Physical Intelligence:

* **inference-time RTC** (Black, Galliker, Levine 2025, arXiv 2506.07339): sample the new chunk as
  an *inpainting* of the previous one. Soft prefix weights (:func:`prefix_weights`) say how strongly
  each step should agree with ``prev_chunk``; each Euler step adds a ΠGDM-style guidance term, the
  weighted error of the one-step estimate of the final chunk pulled back through a ``jax.vjp``
  (:func:`guided_velocity`, :func:`guided_euler_step`, :func:`guided_sample_actions`).
* **training-time RTC** (Black et al. 2025, :mod:`pi0lite.rtc_training`): train with a simulated delay: the first ``d`` action
  tokens are given clean (their own time set to the data end) and left out of the loss
  (:func:`compute_loss_delayed`); at inference they are set to ``prev_chunk`` and only the rest is
  denoised (:func:`sample_actions_with_prefix`), at the cost of plain sampling. This needs a time per
  action token: ``Pi0`` accepts ``time`` of shape ``[b, a]`` (pi0: the time embedding mixed into each
  action token; pi0.5: the adaRMS condition per token).

**Time convention (openpi's, as everywhere in pi0lite): t = 1 is noise, t = 0 is data**, Euler from
1 to 0 with ``dt = −1/num_steps``. The papers write τ = 1 − t (τ = 0 noise) and ``v_paper = −v``;
translated:

* one-step estimate of the data end: ``Â = x_t − t·v(x_t, t)``  (paper: ``A + (1 − τ)·v_paper``);
* guidance ``g = (∂Â/∂x_t)ᵀ [W ⊙ (Y − Â)]`` (one VJP); guided velocity ``v − c·g``
  (paper: ``v_paper + c·g``), so the Euler step ``x + dt·(v − c·g)`` moves ``Â`` towards ``Y``;
* guidance weight ``c = min(β, (t² + (1 − t)²) / (t·(1 − t)))``  (paper: ``(1 − τ)/τ · 1/r²_τ`` with
  ``r²_τ = (1 − τ)² / (τ² + (1 − τ)²)``; the expression is symmetric in t ↔ τ); ``β = max_guidance``.

Timing of the delayed execution loop (:func:`execution_schedule`): chunk ``m`` is computed from the
observation of step ``m·s`` (``s = exec_horizon``); its index 0 is the action of step ``m·s``. Chunk 0
is executed from its index 0 (the episode starts after it); chunk ``m ≥ 1`` arrives at step
``m·s + delay`` and is executed from its index ``delay`` for ``s`` steps. The previous chunk
re-indexed to the new chunk's window is ``prev_chunk[i] = chunk_{m−1}[s + i]`` (:func:`shift_chunk`).

Axis letters (legend in :mod:`pi0lite`): b batch · a action steps (horizon) · j action dims.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from pi0lite import flow
from pi0lite.observation import Observation, concrete_or_none
# training-time RTC lives in its own file; its names stay importable from here
from pi0lite.rtc_training import (_check_num_steps, _prepare, _velocity, compute_loss_delayed, delay_probs,
                                  delayed_time, sample_actions_with_prefix, sample_delay)

__all__ = [
    "SCHEDULES", "compute_loss_delayed", "delay_probs", "delayed_time", "execution_schedule", "guidance_weight",
    "guided_euler_step", "guided_sample_actions", "guided_velocity", "one_step_estimate", "prefix_weights",
    "sample_actions_with_prefix", "sample_delay", "shift_chunk",
]

SCHEDULES = ("exp", "linear")

VelocityFn = Callable[[Float[Array, "b a j"], Float[Array, ""]], Float[Array, "b a j"]]


# --- the prefix weights ----------------------------------------------------------------------


def prefix_weights(
    delay: int | Int[Array, ""], exec_horizon: int, horizon: int, schedule: str = "exp"
) -> Float[Array, "a"]:
    """Soft inpainting weights ``W`` over the ``horizon`` steps of the new chunk.

    * ``W_i = 1`` for ``i < delay`` (committed: already being executed from the previous chunk);
    * ``d ≤ i < H − s``: a ramp from 1 (at ``i = delay − 1``) down to 0 (at ``i = H − s``), so
      ``W_i = (H − s − i) / (H − s − delay + 1)`` (``linear``), or ``w·(e^w − 1)/(e − 1)`` of that
      ramp ``w`` (``exp``, the paper's default);
    * ``W_i = 0`` for ``i ≥ H − s`` (the previous chunk has no action there).

    ``delay`` may be a traced integer (the weights are then computed inside the trace). A delay past
    ``H − s`` is clipped to it.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 1 <= exec_horizon <= horizon:
        raise ValueError(f"exec_horizon must be in [1, horizon={horizon}], got {exec_horizon}")
    d = delay if isinstance(delay, (int, np.integer)) else concrete_or_none(delay)
    if d is not None and np.any(np.asarray(d) < 0):
        raise ValueError(f"delay must be >= 0, got {np.asarray(d).tolist()}")
    end = horizon - exec_horizon
    i = jnp.arange(horizon, dtype=jnp.float32)
    start = jnp.minimum(jnp.asarray(delay, jnp.float32), end)
    w = jnp.clip((start - 1.0 - i) / (end - start + 1.0) + 1.0, 0.0, 1.0)
    if schedule == "exp":
        w = w * jnp.expm1(w) / (jnp.e - 1.0)
    return jnp.where(i >= end, 0.0, w)


# --- one guided Euler step -----------------------------------------------------------------------


def guidance_weight(time: float | Float[Array, ""], max_guidance: float) -> Float[Array, ""]:
    """ΠGDM's weight ``min(β, (t² + (1 − t)²) / (t·(1 − t)))`` at flow time ``t`` (1 = noise); β at t ∈ {0, 1}."""
    t = jnp.asarray(time, jnp.float32)
    denom = t * (1.0 - t)
    safe = jnp.where(denom > 0, denom, 1.0)
    c = jnp.where(denom > 0, (t**2 + (1.0 - t) ** 2) / safe, jnp.inf)
    return jnp.minimum(c, max_guidance)


def one_step_estimate(
    x_t: Float[Array, "b a j"], v_t: Float[Array, "b a j"], time: float | Float[Array, ""]
) -> Float[Array, "b a j"]:
    """The data end reached by one Euler step of size ``t`` from ``x_t``: ``x_t − t·v``."""
    return x_t - time * v_t


def _weights_3d(weights, x):
    w = jnp.asarray(weights, x.dtype)
    return (w[None] if w.ndim == 1 else w)[..., None]  # [1 or b, a, 1]


def guided_velocity(
    velocity_fn: VelocityFn, x_t: Float[Array, "b a j"], time: float | Float[Array, ""],
    prev_chunk: Float[ArrayLike, "b a j"], weights: Float[ArrayLike, "a"] | Float[ArrayLike, "b a"], *,
    max_guidance: float = 5.0,
) -> tuple[Float[Array, "b a j"], Float[Array, "b a j"]]:
    """``(v − c·g, v)``: the guided and the plain velocity at ``(x_t, t)``.

    ``g = (∂Â/∂x_t)ᵀ [W ⊙ (prev_chunk − Â)]`` with ``Â = x_t − t·velocity_fn(x_t, t)``, computed
    with one ``jax.vjp`` through ``velocity_fn`` (which returns the velocity for a batch at one time).
    """

    def estimate(x):
        v = velocity_fn(x, time)
        return one_step_estimate(x, v, time), v

    x_hat, pullback, v = jax.vjp(estimate, x_t, has_aux=True)
    error = _weights_3d(weights, x_t) * (jnp.asarray(prev_chunk, x_t.dtype) - x_hat)
    (g,) = pullback(error)
    return v - guidance_weight(time, max_guidance) * g, v


def guided_euler_step(
    velocity_fn: VelocityFn, x_t: Float[Array, "b a j"], time: float | Float[Array, ""],
    dt: float | Float[Array, ""], prev_chunk: Float[ArrayLike, "b a j"],
    weights: Float[ArrayLike, "a"] | Float[ArrayLike, "b a"], *, max_guidance: float = 5.0,
) -> Float[Array, "b a j"]:
    """One Euler step ``x + dt·(v − c·g)`` of inference-time RTC (``dt < 0``: from noise to data)."""
    v_guided, _ = guided_velocity(velocity_fn, x_t, time, prev_chunk, weights, max_guidance=max_guidance)
    return flow.euler_step(x_t, v_guided, dt)


# --- sampling ----------------------------------------------------------------------------------


def guided_sample_actions(
    model, key: jax.Array, obs: Observation, prev_chunk: Float[ArrayLike, "b a _j"], *,
    delay: int | Int[Array, ""], exec_horizon: int, num_steps: int = 10, max_guidance: float = 5.0,
    schedule: str = "exp", noise: Float[ArrayLike, "b a j"] | None = None, use_cache: bool = True,
) -> Float[Array, "b a j"]:
    """Inference-time RTC: ``Pi0.sample_actions`` with ΠGDM inpainting guidance towards ``prev_chunk``.

    ``prev_chunk`` is the previous chunk re-indexed so that index 0 is the first action the new chunk
    will execute (:func:`shift_chunk`), in the model's (normalised) action space; narrower than
    ``action_dim`` it is zero-padded. Weights :func:`prefix_weights` ``(delay, exec_horizon, H, schedule)``.
    The prefix KV cache is computed once (``use_cache=True``); each step differentiates only the
    suffix pass. Jittable (``delay`` may be traced), batched over ``b``. With all weights zero
    (``delay=0, exec_horizon=H``) the result is ``sample_actions`` with the same noise.
    """
    _check_num_steps(num_steps)
    cfg = model.config
    b, prev, noise = _prepare(model, key, obs, prev_chunk, noise)
    weights = prefix_weights(delay, exec_horizon, cfg.action_horizon, schedule)
    velocity = _velocity(model, obs, use_cache)
    dt = jnp.float32(-1.0 / num_steps)

    def step(carry, _):
        x, t = carry
        x = guided_euler_step(lambda y, s: velocity(y, jnp.broadcast_to(s, (b,))), x, t, dt, prev, weights,
                              max_guidance=max_guidance)
        return (x, t + dt), None

    (x, _), _ = jax.lax.scan(step, (noise, jnp.float32(1.0)), length=num_steps)
    return x


# --- the delayed execution loop ------------------------------------------------------------------


def execution_schedule(
    num_steps: int, *, delay: int, exec_horizon: int, horizon: int
) -> tuple[Int[np.ndarray, "t"], Int[np.ndarray, "t"]]:
    """Which chunk and which of its indices is executed at each control step (naive switching).

    Chunk ``m`` is computed from the observation of step ``m·s``; chunk 0 runs from step 0, chunk
    ``m ≥ 1`` from step ``m·s + delay`` (its index ``delay``): ``m(t) = max(0, (t − delay) // s)``,
    index ``t − m(t)·s``. Needs ``delay + s ≤ H`` (the old chunk must cover the wait).
    """
    if delay < 0 or exec_horizon < 1 or delay + exec_horizon > horizon:
        raise ValueError(f"need delay >= 0, exec_horizon >= 1 and delay + exec_horizon <= horizon={horizon}, "
                         f"got delay={delay}, exec_horizon={exec_horizon}")
    t = np.arange(num_steps)
    chunk = np.maximum(0, (t - delay) // exec_horizon)
    return chunk, t - chunk * exec_horizon


def shift_chunk(chunk: Float[ArrayLike, "b a j"], exec_horizon: int) -> Float[Array, "b a j"]:
    """The previous chunk re-indexed to the next chunk's window: ``out[:, i] = chunk[:, s + i]``.

    The ``s`` steps past its end repeat its last action (their prefix weight is 0 anyway).
    """
    chunk = jnp.asarray(chunk)
    if not 0 <= exec_horizon < chunk.shape[1]:
        raise ValueError(f"exec_horizon must be in [0, {chunk.shape[1]}), got {exec_horizon}")
    tail = jnp.repeat(chunk[:, -1:], exec_horizon, axis=1)
    return jnp.concatenate([chunk[:, exec_horizon:], tail], axis=1)
