"""Flow matching, openpi's convention (one convention, everywhere in pi0lite).

**t = 1 is pure noise, t = 0 is data.**

* ``x_t = t·noise + (1 − t)·actions``
* target velocity ``u_t = dx_t/dt = noise − actions``
* training time ``t ~ Beta(1.5, 1)·0.999 + 0.001``
* sampling: Euler from t = 1 down to t = 0 with ``dt = −1/num_steps``: ``x ← x + dt·v(x, t)``.

The pi0 *paper* writes it the other way round: τ = 0 is noise, τ = 1 is data,
``x_τ = τ·actions + (1 − τ)·noise`` and target ``actions − noise``. The translation is
``τ = 1 − t`` and ``v_paper = −v_openpi``: same path, same model, opposite labels.

Axis letters (legend in :mod:`pi0lite`): b batch · a action steps (horizon) · j action dims ·
e embedding width (pi0's action-expert width).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

TIME_BETA_ALPHA = 1.5
TIME_BETA_BETA = 1.0


def sample_time(key: jax.Array, batch_size: int) -> Float[Array, "b"]:
    """Training times ``Beta(1.5, 1)·0.999 + 0.001`` in [0.001, 1]: more weight near the noise end."""
    return jax.random.beta(key, TIME_BETA_ALPHA, TIME_BETA_BETA, (batch_size,)) * 0.999 + 0.001


def interpolate(noise: Float[Array, "b a j"], actions: Float[Array, "b a j"], time: Float[Array, "b"]) -> Float[Array, "b a j"]:
    """The noisy chunk ``x_t = t·noise + (1 − t)·actions`` (t broadcast over a, j)."""
    t = time[:, None, None]
    return t * noise + (1.0 - t) * actions


def target_velocity(noise: Float[Array, "b a j"], actions: Float[Array, "b a j"]) -> Float[Array, "b a j"]:
    """``u_t = noise − actions``: the direction from data towards noise (t grows towards noise)."""
    return noise - actions


def euler_step(x_t: Float[Array, "b a j"], v_t: Float[Array, "b a j"], dt: float | Float[Array, ""]) -> Float[Array, "b a j"]:
    """One Euler step ``x + dt·v``; sampling uses ``dt = −1/num_steps`` (moving from noise to data)."""
    return x_t + dt * v_t


def posemb_sincos(
    time: Float[ArrayLike, "b"], width: int, *, min_period: float = 4e-3, max_period: float = 4.0
) -> Float[Array, "b e"]:
    """Sine–cosine embedding of a scalar per example: all sines first, then all cosines.

    Periods run geometrically from ``min_period`` to ``max_period`` over ``width // 2`` frequencies.
    The operation order (reciprocal period × 2π, then × t) follows openpi so float32 rounding
    matches to ~1e-5 even at the largest angles (~1571 rad at t = 1).
    """
    if width % 2:
        raise ValueError(f"posemb_sincos width must be even, got {width}")
    fraction = jnp.linspace(0.0, 1.0, width // 2, dtype=jnp.float32)
    period = min_period * (max_period / min_period) ** fraction
    angle = jnp.einsum(
        "b,e->be", time.astype(jnp.float32), 1.0 / period * 2 * jnp.pi, precision=jax.lax.Precision.HIGHEST
    )
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)
