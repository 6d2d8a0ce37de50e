"""Attention masks and positions, openpi's rule.

Axis letters (legend in :mod:`pi0lite`): b batch · t tokens (as queries) · s the same tokens (as keys) ·
p prefix tokens · q suffix tokens.

Every token carries two flags:

* ``input_mask`` (bool): the token is real (not padding, not a missing camera);
* ``ar_mask`` (bool/int): the token *opens a new block*.

With ``c = cumsum(ar_mask)``, query ``i`` may attend to key ``j`` iff ``c[j] <= c[i]`` and both
tokens are valid. All-zero ``ar_mask`` is full bidirectional attention; all-one is causal;
``[0, 0, 0, 1, 1]`` is a prefix-LM. **True means "may attend"; rows are queries, columns keys.**
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Int

#: The one finite "minus infinity" used for masked attention logits (openpi's ``big_neg``).
#: Finite on purpose: a fully masked row (a padding query) then gets a uniform softmax instead
#: of ``NaN``, which keeps gradients and comparisons clean.
MASK_VALUE = -2.3819763e38


def make_attn_mask(
    input_mask: Bool[ArrayLike, "b t"], ar_mask: Bool[ArrayLike, "*b t"] | Int[ArrayLike, "*b t"] | Sequence[int]
) -> Bool[Array, "b t t"]:
    """Return ``[b, t, s]`` bool (s = t: the same tokens as keys): ``mask[b, i, j]`` is True iff query i may attend to key j."""
    input_mask = jnp.asarray(input_mask, bool)
    ar_mask = jnp.broadcast_to(jnp.asarray(ar_mask), input_mask.shape)
    if input_mask.ndim != 2:
        raise ValueError(f"input_mask must be [batch, seq], got shape {input_mask.shape}")
    cumsum = jnp.cumsum(ar_mask.astype(jnp.int32), axis=1)
    block_ok = cumsum[:, None, :] <= cumsum[:, :, None]  # [b, query, key]
    valid = input_mask[:, None, :] & input_mask[:, :, None]
    return block_ok & valid


def make_positions(input_mask: Bool[ArrayLike, "b t"]) -> Int[Array, "b t"]:
    """RoPE positions ``cumsum(input_mask) - 1``: padding does not advance the count."""
    return jnp.cumsum(jnp.asarray(input_mask, jnp.int32), axis=-1) - 1


def prefix_ar_mask(prefix_len: int) -> Bool[np.ndarray, "p"]:
    """pi0/pi0.5 prefix (images + text): one bidirectional block, all False."""
    return np.zeros((prefix_len,), bool)


def suffix_ar_mask(action_horizon: int, *, pi05: bool = False) -> Bool[np.ndarray, "q"]:
    """pi0 suffix ``[state, a_0 .. a_{H-1}]`` → ``[1, 1, 0, ..., 0]``; pi0.5 (no state) → ``[1, 0, ...]``.

    The state token opens its own block (it sees the prefix, not the actions); the action tokens
    open the next block and see each other bidirectionally.
    """
    if pi05:
        return np.array([True] + [False] * (action_horizon - 1))
    return np.array([True, True] + [False] * (action_horizon - 1))
