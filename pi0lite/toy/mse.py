"""The MSE-regression baseline: pi0's network read as a direct predictor of the action chunk.

The noise input is fixed to 0 and the time to 1 (the noise end); the velocity head's output is
taken as the chunk itself and trained with a plain mean squared error. Used by the trainer
(:mod:`pi0lite.toy.train`) and at inference (:mod:`pi0lite.toy.policy`).

Axis letters: b batch, h action horizon, d action dim, p prefix tokens, w prefix width.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from pi0lite.pi0 import Observation, Pi0


def mse_forward(model: Pi0, obs: Observation) -> tuple[Float[Array, "b h d"], Float[Array, "b p w"]]:
    """The predicted chunk and the prefix output of the same pass (the grounding head reads it)."""
    b, cfg = obs.batch_size, model.config
    zeros = jnp.zeros((b, cfg.action_horizon, cfg.action_dim), jnp.float32)
    return model.forward(obs, zeros, jnp.ones((b,), jnp.float32))


def mse_actions(model: Pi0, obs: Observation) -> Float[Array, "b h d"]:
    """The MSE baseline's prediction: the network at x_t = 0, t = 1, read as the chunk itself."""
    return mse_forward(model, obs)[0]
