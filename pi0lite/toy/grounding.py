"""The auxiliary grounding head: a stand-in for the VLM pretraining that grounds pi0's language.

pi0's prefix expert is a pretrained vision-language model (PaliGemma): it already links the word
"red" to the red pixels. Trained from scratch on the toy task, the prefix never learns that link in
a few minutes, and the flow policy goes to a random square. This head asks the prefix expert a VLM
question, "where is the square named here?": a ``Linear(w → 2)`` on the final-normed prefix
output at the colour-word token regresses the goal square's centre (``pi0lite.toy.data.goal_target``).
It is training-side only; the policy never uses it at inference.

Axis letters: b batch, p prefix tokens, w prefix width, k xy (2).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int


class AuxHead(nnx.Module):
    """``Linear(w → 2)`` read out at one prefix token per example."""

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.proj = nnx.Linear(width, 2, rngs=rngs)

    def __call__(self, prefix_out: Float[Array, "b p w"], token_index: Int[Array, " b"]) -> Float[Array, "b 2"]:
        """Predicted goal xy (in ``goal_target`` units) from the token at ``token_index``."""
        if prefix_out.shape[0] != token_index.shape[0]:
            raise ValueError(f"token_index {token_index.shape} must have one entry per prefix_out row {prefix_out.shape}")
        picked = jnp.take_along_axis(prefix_out, token_index[:, None, None], axis=1)[:, 0]  # [b, w]
        return self.proj(picked.astype(jnp.float32))


def aux_loss(pred: Float[Array, "b 2"], target: Float[Array, "b 2"]) -> Float[Array, ""]:
    """Mean squared error of the goal-location prediction."""
    return jnp.mean(jnp.square(pred - target))
