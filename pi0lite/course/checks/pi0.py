"""Checks for notebook 06 (pi0 loss and sampling): the suffix positions and attention mask that a
suffix-only step needs once the prefix sits in the KV cache.

Axis letters: b batch, p prefix tokens, q suffix tokens.

Reference (an independent oracle, not a copy): build the *full* sequence [prefix; suffix] with
``pi0lite.masks`` and keep the suffix rows. Caching is exact precisely because these rows are all
a suffix step needs: prefix rows never look at suffix columns.
"""

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from pi0lite.course.checks._cases import Case, run_cases
from pi0lite.masks import make_attn_mask, make_positions, suffix_ar_mask

__all__ = ["check_suffix_positions", "check_cached_suffix_mask"]


def _full_positions(prefix_mask, suffix_mask) -> np.ndarray:
    full = np.concatenate([prefix_mask, suffix_mask], axis=1)
    return np.asarray(make_positions(full))[:, prefix_mask.shape[1] :]


def _full_mask_rows(prefix_mask, suffix_mask, suffix_ar) -> np.ndarray:
    full = np.concatenate([prefix_mask, suffix_mask], axis=1)
    ar = np.concatenate([np.zeros(prefix_mask.shape[1], bool), np.asarray(suffix_ar, bool)])
    return np.asarray(make_attn_mask(full, ar))[:, prefix_mask.shape[1] :, :]


def _layouts() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, prefix_mask [b, p], suffix_mask [b, q], suffix_ar [q]); pi0 never pads the suffix."""
    ar3 = suffix_ar_mask(2)  # state, a0, a1
    return [
        ("no padding: 3 prefix tokens, state + 2 actions", np.ones((1, 3), bool), np.ones((1, 3), bool), ar3),
        ("prompt padding at the end", np.array([[1, 1, 1, 0, 0]], bool), np.ones((1, 3), bool), ar3),
        (
            "missing camera in the middle, batch of 2",
            np.array([[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 0]], bool),
            np.ones((2, 4), bool),
            suffix_ar_mask(3),
        ),
        ("pi0.5-style suffix (no state token)", np.array([[1, 0, 1, 1, 0]], bool), np.ones((1, 3), bool), suffix_ar_mask(3, pi05=True)),
    ]


def _padded_suffix_layout() -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """pi0 never pads its own suffix, but ``suffix_positions`` takes ``suffix_mask`` and must honour
    it: with a padded slot, ``n_valid + arange(q)`` (ignoring the mask) is caught."""
    pm = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], bool)
    sm = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool)
    return "padded suffix slot, batch of 2", pm, sm, suffix_ar_mask(3)


def check_suffix_positions(fn: Callable) -> None:
    """Exercise 6.1: ``fn(prefix_mask [b, p], suffix_mask [b, q]) -> int [b, q]`` RoPE positions.

    They must continue the prefix's numbering exactly as if the whole sequence ran in one pass.
    """
    cases = []
    for name, pm, sm, _ in [*_layouts(), _padded_suffix_layout()]:
        n_valid = pm.sum(-1, keepdims=True)
        cum = np.cumsum(sm, -1)
        cases.append(
            Case(
                name=name,
                args=(jnp.asarray(pm), jnp.asarray(sm)),
                expected=_full_positions(pm, sm),
                mistakes={
                    "Positions count from 0: the first suffix token sits at (number of valid prefix "
                    "tokens), i.e. n_valid + cumsum(suffix_mask) − 1.": n_valid + cum,
                    "Padding does not advance the position: count the *valid* prefix tokens "
                    "(sum of prefix_mask), not the prefix length.": pm.shape[1] + cum - 1,
                    "The suffix continues the prefix numbering; it does not restart at 0.": cum - 1,
                    "Padded suffix slots do not advance the position either: use cumsum(suffix_mask) − 1, "
                    "not arange(q).": n_valid + np.arange(sm.shape[1]),
                },
            )
        )
    run_cases(
        "suffix_positions",
        fn,
        cases,
        generic_hint="positions = sum(prefix_mask) + cumsum(suffix_mask) − 1 (per example).",
    )


def check_cached_suffix_mask(fn: Callable) -> None:
    """Exercise 6.2: ``fn(prefix_mask [b,p], suffix_mask [b,q], suffix_ar [q]) -> bool [b, q, p+q]``.

    The suffix rows of the full pi0 mask: columns are [cached prefix keys; this step's suffix keys].
    """
    cases = []
    for name, pm, sm, ar in _layouts():
        expected = _full_mask_rows(pm, sm, ar)
        b, q, p = sm.shape[0], sm.shape[1], pm.shape[1]
        suffix_part = np.asarray(make_attn_mask(sm, ar))
        cases.append(
            Case(
                name=name,
                args=(jnp.asarray(pm), jnp.asarray(sm), jnp.asarray(ar)),
                expected=expected,
                mistakes={
                    "Suffix queries must not see padded / missing prefix tokens: use prefix_mask "
                    "for the prefix columns.": np.concatenate([np.ones((b, q, p), bool), suffix_part], -1),
                    "Within the suffix the block rule applies (make_attn_mask(suffix_mask, suffix_ar)): "
                    "actions see each other, the state does not see the actions.": np.concatenate(
                        [expected[..., :p], np.broadcast_to(np.tril(np.ones((q, q), bool)), (b, q, q))], -1
                    ),
                    "Rows are queries, columns keys — the suffix block looks transposed.": np.concatenate(
                        [expected[..., :p], np.swapaxes(suffix_part, 1, 2)], -1
                    ),
                },
            )
        )
    run_cases(
        "cached_suffix_mask",
        fn,
        cases,
        generic_hint="concatenate [prefix_mask repeated over the q suffix rows, make_attn_mask(suffix_mask, suffix_ar)].",
    )
