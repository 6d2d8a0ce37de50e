"""Checks for notebooks 07 (the FAST tokenizer) and 08 (pi0-FAST); 7.3's BPE merge step is in
:mod:`pi0lite.course.checks.bpe`.

Axis letters: b batch, h horizon (time), f DCT frequency, d action dim, n flattened
coefficients, l token slots, s cache slots, v vocabulary.

References: ``scipy.fft.dct`` (norm "ortho"), :func:`pi0lite.fast.dct_quantise`, the prompt
layout of :mod:`pi0lite.fast.prompt` and :func:`pi0lite.fast.decode.decode_step`.
"""

import numpy as np
import scipy.fft

from pi0lite.course.checks._cases import Case, random_normal, report_success, run_cases

__all__ = ["check_dct_matrix", "check_quantise_flatten", "check_fast_masks", "check_decode_step"]


# --- 7.1 the DCT as a matrix ------------------------------------------------------------------


def _dct_matrix(n: int) -> np.ndarray:
    return scipy.fft.dct(np.eye(n), axis=0, norm="ortho")


def check_dct_matrix(fn) -> None:
    """``fn(n) -> [n, n]`` with ``coeffs = M @ x`` equal to the orthonormal DCT-II and ``M.T @ M = I``."""
    cases = []
    for n in (1, 4, 7, 50):
        m = _dct_matrix(n)
        unnorm = scipy.fft.dct(np.eye(n), axis=0)
        mistakes = {
            "Use the orthonormal scaling: sqrt(1/n) for row 0 and sqrt(2/n) for the others "
            "(scipy's norm='ortho'), so that the inverse is just the transpose.": unnorm,
            "Rows are frequencies, columns are time steps: M[k, t] = s_k·cos(π(2t+1)k / 2n). "
            "You built the transpose.": m.T,
            "Row 0 needs the extra factor 1/sqrt(2) (sqrt(1/n) instead of sqrt(2/n)).": np.sqrt(2.0 / n) * np.cos(
                np.pi * (2 * np.arange(n)[None, :] + 1) * np.arange(n)[:, None] / (2 * n)
            ),
        }
        cases.append(Case(name=f"n={n}", args=(n,), expected=m, mistakes=mistakes, atol=1e-8))
    run_cases("dct_matrix", fn, cases, generic_hint="M[k, t] = s_k · cos(π (2t + 1) k / (2n)), s_0 = sqrt(1/n), s_k = sqrt(2/n).")
    m = np.asarray(fn(9), np.float64)
    x = random_normal(3, (9, 2)).astype(np.float64)
    if not np.allclose(m.T @ (m @ x), x, atol=1e-8):
        raise AssertionError("dct_matrix: the round trip M.T @ (M @ x) does not give x back")


# --- 7.2 quantise and flatten -----------------------------------------------------------------


def _quantise(x, scale, *, axis=1, order="C", rounding=np.around):
    c = scipy.fft.dct(np.asarray(x, np.float64), axis=axis, norm="ortho")
    return rounding(c * scale).astype(np.int64).reshape(len(x), -1, order=order) if order == "C" else np.stack(
        [rounding(ci * scale).astype(np.int64).flatten(order="F") for ci in c]
    )


_HALF_EVEN = "Round half to even (np.around / np.round / jnp.round): 0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → 0."
_HALF_UP = _HALF_EVEN + " floor(x + 0.5) rounds halves up."
_HALF_AWAY = _HALF_EVEN + " Rounding halves away from zero (sign·floor(|x| + 0.5)) is not it either."


def _half_up(x):
    return np.floor(x + 0.5)


def _half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _exact_halves() -> list[tuple[str, np.ndarray, float]]:
    """Chunks whose scaled DCT coefficients are exact halves (k + 0.5), so the rounding rule shows.

    A chunk constant over time has only coefficient 0, ``sqrt(h)·x``. With ``x = (k + 0.5) / (sqrt(h)·scale)``
    and h = 2 or 8 it comes out as the exact half in float64 (scipy, a DCT matrix product, einsum
    alike: checked here, a case that is not exact is left out rather than judged).
    """
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    cases = []
    for h, scale in ((2, 2.0), (8, 10.0)):
        x = np.repeat((halves / np.sqrt(h) / scale)[None, None, :], h, axis=1)  # [1, h, 6]
        c = scipy.fft.dct(x, axis=1, norm="ortho") * scale
        if np.array_equal(c[0, 0], halves):
            cases.append((f"exact halves ±0.5, ±1.5, ±2.5: constant chunk h = {h}, scale {scale}", x, scale))
    return cases


def check_quantise_flatten(fn) -> None:
    """``fn(x [b, h, d], scale) -> int [b, h·d]``: DCT along time, scale, round, frequency-first flatten."""
    cases = []
    inputs = [(f"shape {shape}, scale {scale}", random_normal(20 + i, shape, 0.5).astype(np.float64), scale)
              for i, (shape, scale) in enumerate((((1, 5, 2), 10.0), ((3, 10, 3), 10.0), ((2, 8, 4), 4.0)))]
    for name, x, scale in _exact_halves() + inputs:
        mistakes = {
            _HALF_UP: _quantise(x, scale, rounding=_half_up),
            _HALF_AWAY: _quantise(x, scale, rounding=_half_away),
            "Flatten row-major (frequency first): all d dims of frequency 0, then frequency 1, … "
            "Transposing first gives dimension-first order.": _quantise(x, scale, order="F"),
            "The DCT runs along time (axis 1 of [b, h, d]), not along the action dims.": _quantise(x, scale, axis=2),
            "Round to the nearest integer (np.round / np.around); astype(int) truncates towards zero.": _quantise(
                x, scale, rounding=np.trunc
            ),
            "Multiply the DCT coefficients by scale before rounding (not divide).": _quantise(x, 1.0 / scale),
        }
        q = np.asarray(np.around(scipy.fft.dct(x, axis=1, norm="ortho") * scale), np.int64).reshape(len(x), -1)
        mistakes["Quantise the DCT coefficients, not the raw actions."] = np.around(x * scale).astype(np.int64).reshape(len(x), -1)
        cases.append(Case(name=name, args=(x, scale), expected=q, mistakes=mistakes, atol=0))
    run_cases("quantise_flatten", fn, cases, generic_hint="scipy.fft.dct(x, axis=1, norm='ortho'), times scale, np.around, reshape(b, -1).")


# --- 8.1 the pi0-FAST masks -------------------------------------------------------------------


def _fast_masks(prefix_lens, postfix_lens, max_len):
    pos = np.arange(max_len)[None, :]
    pre, post = np.asarray(prefix_lens)[:, None], np.asarray(postfix_lens)[:, None]
    valid = pos < pre + post
    postfix = (pos >= pre) & valid
    return valid, postfix.astype(np.int32), postfix


def check_fast_masks(fn) -> None:
    """``fn(prefix_lens, postfix_lens, max_len) -> (input_mask, ar_mask, loss_mask)``, each ``[b, l]``."""
    cases = [((5,), (3,), 10), ((4, 7), (5, 2), 12), ((3, 2), (0, 6), 8)]
    for pre, post, L in cases:
        exp = _fast_masks(pre, post, L)
        try:
            got = fn(np.array(pre), np.array(post), L)
        except NotImplementedError:
            raise
        except Exception as err:
            raise AssertionError(f"fast_masks, case {pre}/{post}: your function raised {type(err).__name__}: {err}") from err
        for what, e, g in zip(("input_mask", "ar_mask", "loss_mask"), exp, got):
            g = np.asarray(g)
            if g.shape != e.shape or not np.array_equal(g.astype(np.int64), e.astype(np.int64)):
                hint = {
                    "input_mask": "True on the prefix and the postfix, False on the padding after them.",
                    "ar_mask": "1 exactly on the postfix (the action tokens are causal), 0 on prefix and padding.",
                    "loss_mask": "True exactly on the postfix: the task text and the padding are never targets.",
                }[what]
                raise AssertionError(
                    f"fast_masks, case prefix {pre} postfix {post} max_len {L}: {what} is wrong\n"
                    f"expected\n{e.astype(int)}\ngot\n{g.astype(int) if g.shape == e.shape else g.shape}\nHint: {hint}"
                )
    report_success("fast_masks", len(cases))


# --- 8.2 one decoding step --------------------------------------------------------------------


def _only_current_slot(model, token, kv, mask, step):
    """The mistake 'the new token sees the prompt and its own slot only' (not the earlier tokens)."""
    import jax.numpy as jnp

    b, n = mask.shape
    slots = kv[0].shape[2]
    x = model.llm.embedder.encode(token[:, None])
    positions = (jnp.sum(mask, axis=1) + step)[:, None]
    attn = (jnp.pad(mask, ((0, 0), (0, slots - n))) | (jnp.arange(slots) == n + step)[None, :])[:, None, :]
    (out,), _ = model.llm([x], positions=positions, mask=attn, kv_cache=kv, cache_index=n + step)
    return np.asarray(model.llm.embedder.decode(out)[:, 0], np.float64)


def check_decode_step(fn, model, token, kv, mask, step: int, *, num_steps: int = 3) -> None:
    """``fn(model, token [b], kv, mask [b, n], step) -> (logits [b, v], kv)`` equals the package's step.

    Checked at ``step`` and the steps after it (``num_steps`` in all, as far as the cache has
    slots), each time from the package's cache of the step before: from step 1 on the new token
    must also see the tokens generated before it, which step 0 alone cannot tell.
    """
    from flax import nnx

    from pi0lite.fast.decode import decode_step

    import jax.numpy as jnp

    reference = nnx.jit(decode_step)  # one compilation: the step and the offset are traced
    n, slots = mask.shape[1], kv[0].shape[2]
    steps = [s for s in range(step, step + num_steps) if n + s < slots]
    if not steps:
        raise ValueError(f"check_decode_step: step {step} leaves no free cache slot (n = {n}, slots = {slots})")
    for s in steps:
        want, kv_next = reference(model, token, kv, mask, s, position_offset=jnp.int32(0))
        got, got_kv = fn(model, token, kv, mask, s)
        before, after = np.asarray(kv[0]), np.asarray(got_kv[0])
        if after.shape != before.shape or not np.any(after[:, :, n + s]) or not np.array_equal(after[:, :, : n + s], before[:, :, : n + s]):
            raise AssertionError(
                f"decode_step, step {s}: the new key/value must go into cache slot n + step = {n + s} and nowhere else\n"
                "Hint: pass cache_index = n + step (n = prompt length) to the model."
            )
        got = np.asarray(got, np.float64)
        if got.shape != want.shape:
            raise AssertionError(f"decode_step, step {s}: expected logits of shape {want.shape}, got {got.shape}")
        if not np.allclose(got, np.asarray(want), atol=1e-4, rtol=1e-4):
            hint = ("position = prefill_len + step (the position this token had in training); the mask allows the "
                    "valid prompt slots and the cache slots n … n + step (including the new one).")
            off_by_one, _ = reference(model, token, kv, mask, s, position_offset=jnp.int32(1))
            if np.allclose(got, np.asarray(off_by_one), atol=1e-4, rtol=1e-4):
                hint = "That is openpi's off-by-one: use position prefill_len + step, not prefill_len + step + 1."
            elif s > 0 and np.allclose(got, _only_current_slot(model, token, kv, mask, s), atol=1e-4, rtol=1e-4):
                hint = (f"At step {s} the new token must also see the {s} token(s) generated before it: allow every "
                        "cache slot n … n + step, not only slot n + step.")
            err = float(np.abs(got - np.asarray(want)).max())
            raise AssertionError(f"decode_step, step {s}: logits differ from the reference by up to {err:.3g}\nHint: {hint}")
        token, kv = jnp.argmax(want, axis=-1).astype(jnp.int32), kv_next
    report_success("decode_step", len(steps))
