"""Checks for notebook 02 (the attention mask).

Axis letters: b batch, n queries, s keys (n = s: self-attention).

Exercises: 2.1 ``make_attn_mask(input_mask, ar_mask)``; 2.2 a mask predicted by hand
(``check_predicted_mask``); 2.3 ``pi0_ar_mask(num_image_tokens, num_text_tokens,
action_horizon)``, pi0's ar flags for the whole sequence.

The expected masks come from an independent oracle, a plain double loop over (query, key)
written straight from the rule "query i may attend to key j iff cumsum(ar)[j] ≤ cumsum(ar)[i] and
both are valid"; ``tests/test_checks_masks.py`` ties it to ``pi0lite.masks.make_attn_mask``.
"""

from collections.abc import Callable

import numpy as np

from pi0lite.course.checks._cases import Case, compare, run_cases
from pi0lite.masks import prefix_ar_mask, suffix_ar_mask

__all__ = ["check_make_attn_mask", "check_predicted_mask", "check_pi0_ar_mask"]

_TRANSPOSED = "rows are queries and columns keys: mask[b, i, j] says whether query i may attend to key j. Did you transpose?"
_CAUSAL = "only ar_mask = True opens a new block; tokens with ar_mask = False join the previous block and see it bidirectionally (cumsum, not arange)."
_NO_PADDING = "padding (input_mask = False) must be masked both as a query (its row) and as a key (its column)."
_KEYS_ONLY = "a padding token must not attend either: mask its row too, not only its column."
_STRICT = "a token always sees its own block: compare cumsum[key] <= cumsum[query] (≤, not <)."
_AXIS = ("cumsum along the sequence (axis=-1): block ids count the ar flags from left to right within each "
         "example, not down the batch (axis=0).")


def naive_attn_mask(input_mask, ar_mask) -> np.ndarray:
    """The rule as a double loop: the oracle the checks compare against."""
    input_mask = np.asarray(input_mask, bool)
    ar = np.broadcast_to(np.asarray(ar_mask, int), input_mask.shape)
    b, n = input_mask.shape
    out = np.zeros((b, n, n), bool)
    for e in range(b):
        block = np.cumsum(ar[e])
        for i in range(n):
            for j in range(n):
                out[e, i, j] = bool(block[j] <= block[i] and input_mask[e, i] and input_mask[e, j])
    return out


def _from_blocks(block, input_mask) -> np.ndarray:
    return (block[:, None, :] <= block[:, :, None]) & input_mask[:, None, :] & input_mask[:, :, None]


def _mask_mistakes(input_mask, ar_mask) -> dict[str, np.ndarray]:
    input_mask = np.asarray(input_mask, bool)
    right = naive_attn_mask(input_mask, ar_mask)
    ones = np.ones(input_mask.shape[-1], int)
    ar = np.broadcast_to(np.asarray(ar_mask, int), input_mask.shape)
    block = np.cumsum(ar, axis=-1)
    strict = (block[:, None, :] < block[:, :, None]) & input_mask[:, None, :] & input_mask[:, :, None]
    mistakes = {
        _TRANSPOSED: np.swapaxes(right, -1, -2),
        _NO_PADDING: naive_attn_mask(np.ones_like(input_mask), ar_mask),
        _KEYS_ONLY: naive_attn_mask(np.ones_like(input_mask), ar_mask) & input_mask[:, None, :],
        _STRICT: strict,
    }
    over_batch = _from_blocks(np.cumsum(ar, axis=0), input_mask)
    if not np.array_equal(over_batch, right):
        mistakes[_AXIS] = over_batch
    if not np.array_equal(right, naive_attn_mask(input_mask, ones)):
        mistakes[_CAUSAL] = naive_attn_mask(input_mask, ones)
    return {hint: wrong for hint, wrong in mistakes.items() if not np.array_equal(wrong, right)}


def _mask_case(name: str, input_mask, ar_mask) -> Case:
    input_mask = np.asarray(input_mask, bool)
    ar_mask = np.asarray(ar_mask, bool)
    return Case(
        name=name,
        args=(input_mask, ar_mask),
        expected=naive_attn_mask(input_mask, ar_mask),
        mistakes=_mask_mistakes(input_mask, ar_mask),
    )


def _pi0_layout(num_image: int, num_text: int, num_pad: int, horizon: int):
    ar = np.concatenate([prefix_ar_mask(num_image + num_text), suffix_ar_mask(horizon)])
    valid = np.ones(ar.shape, bool)
    valid[num_image + num_text - num_pad : num_image + num_text] = False
    return valid[None], ar


def check_make_attn_mask(make_attn_mask: Callable) -> None:
    """``make_attn_mask(input_mask bool[b, n], ar_mask bool[n] or [b, n]) -> bool[b, n, n]`` (rows = queries)."""
    n = 6
    ones = np.ones((1, n), bool)
    cases = [
        _mask_case("bidirectional: ar_mask all False", ones, np.zeros(n)),
        _mask_case("causal: ar_mask all True", ones, np.ones(n)),
        _mask_case("prefix-LM: ar_mask [0,0,0,1,1,1]", ones, [0, 0, 0, 1, 1, 1]),
        _mask_case("padding: input_mask [1,1,1,1,0,0]", [[1, 1, 1, 1, 0, 0]], [0, 0, 0, 1, 1, 1]),
        _mask_case("pi0 layout: 4 image, 3 text (1 pad), state, 3 actions", *_pi0_layout(4, 3, 1, 3)),
        _mask_case(
            "batch of 2 with different padding",
            [[1, 1, 1, 0, 1, 1, 1], [1, 0, 0, 0, 1, 1, 1]],
            [0, 0, 0, 0, 1, 1, 0],
        ),
        _mask_case(
            "per-example ar_mask [b, n]",
            [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]],
            [[0, 0, 1, 1, 0, 1], [0, 1, 0, 0, 1, 0]],
        ),
    ]
    rng = np.random.default_rng(0)
    for k in range(3):
        size = int(rng.integers(5, 12))
        valid = rng.random((2, size)) < 0.8
        ar = rng.random(size) < 0.4
        cases.append(_mask_case(f"random #{k} (n={size})", valid, ar))
    run_cases("make_attn_mask", make_attn_mask, cases, generic_hint="write the rule as a double loop first and compare.")


def check_predicted_mask(answer, ar_mask, input_mask=None) -> None:
    """Compare a hand-written ``[n, n]`` mask (bools or 0/1) with the rule for one sequence."""
    ar_mask = np.asarray(ar_mask, bool)
    input_mask = np.ones(ar_mask.shape, bool) if input_mask is None else np.asarray(input_mask, bool)
    answer = np.asarray(answer)
    if answer.dtype != bool:
        if not np.isin(answer, (0, 1)).all():
            raise AssertionError("predicted mask: use only 0/1 (or False/True) entries")
        answer = answer.astype(bool)
    case = Case(
        name=f"ar_mask {ar_mask.astype(int).tolist()}, input_mask {input_mask.astype(int).tolist()}",
        args=(),
        expected=naive_attn_mask(input_mask[None], ar_mask)[0],
        mistakes={hint: wrong[0] for hint, wrong in _mask_mistakes(input_mask[None], ar_mask).items()},
    )
    compare("predicted mask", case, answer, generic_hint="go row by row: row i = which keys query i may see.")
    print("✓ predicted mask: correct")


def _pi0_ar_reference(num_image_tokens: int, num_text_tokens: int, action_horizon: int) -> np.ndarray:
    return np.concatenate([prefix_ar_mask(num_image_tokens + num_text_tokens), suffix_ar_mask(action_horizon)])


def check_pi0_ar_mask(pi0_ar_mask: Callable) -> None:
    """``pi0_ar_mask(num_image_tokens, num_text_tokens, action_horizon) -> bool[n]`` (prefix + suffix)."""
    cases = []
    for sizes in [(4, 3, 3), (16, 8, 16), (2, 1, 1), (768, 48, 50)]:
        img, txt, h = sizes
        prefix = np.zeros(img + txt, bool)
        mistakes = {
            "the state token opens its own block (True) and the first action token opens the next "
            "one (True): [..., 1, 1, 0, 0, ...], so the state token cannot see the noisy actions.": np.concatenate(
                [prefix, [True], np.zeros(h, bool)]
            ),
            "the action tokens see each other bidirectionally: only the first one is True.": np.concatenate(
                [prefix, np.ones(h + 1, bool)]
            ),
            "the prefix (images + text) is one bidirectional block: all False.": np.concatenate(
                [np.ones(img + txt, bool), suffix_ar_mask(h)]
            ),
            "pi0's suffix has 1 + action_horizon tokens (state, then actions); [1, 0, 0, ...] with "
            "action_horizon tokens is pi0.5's layout, which has no state token.": np.concatenate(
                [prefix, [True], np.zeros(h - 1, bool)]
            ),
        }
        cases.append(
            Case(
                name=f"{img} image + {txt} text tokens, horizon {h}",
                args=sizes,
                expected=_pi0_ar_reference(*sizes),
                mistakes=mistakes,
            )
        )
    run_cases("pi0_ar_mask", pi0_ar_mask, cases)
