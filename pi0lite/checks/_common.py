"""Shared machinery of the exercise checks: compare, diagnose known mistakes, report.

A check calls :func:`assert_same` once per named case. On a mismatch it raises an
``AssertionError`` that names the case, says what is wrong (type, shape, or the first wrong
index with expected vs got) and, when the answer equals the output of a known mistake, the hint
for that mistake. :func:`passed` prints the one-line success message.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A known mistake: (what that mistake would have returned, the hint to show).
Mistake = tuple[object, str]


def _as_array(value, case: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except Exception as err:  # a student may return anything
        raise AssertionError(f"[{case}] expected an array, got {type(value).__name__}: {err}") from None


def _matches(got: np.ndarray, other: np.ndarray, atol: float, rtol: float) -> bool:
    other = np.asarray(other)
    if got.shape != other.shape:
        return False
    if got.dtype == bool or other.dtype == bool:
        return bool(np.array_equal(got.astype(bool), other.astype(bool)))
    return bool(np.allclose(got, other, atol=atol, rtol=rtol))


def _diagnose(got: np.ndarray, mistakes: Sequence[Mistake], atol: float, rtol: float) -> str:
    for output, hint in mistakes:
        if _matches(got, output, atol, rtol):
            return f"\nHint: {hint}"
    return ""


def assert_same(
    case: str,
    got,
    expected,
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    mistakes: Sequence[Mistake] = (),
    want_bool: bool = False,
) -> None:
    """Raise ``AssertionError`` unless ``got`` equals ``expected`` (bool exactly, floats to tolerance)."""
    got = _as_array(got, case)
    expected = np.asarray(expected)
    if want_bool and got.dtype != bool:
        raise AssertionError(f"[{case}] expected a bool array, got dtype {got.dtype} (compare, don't multiply)")
    if not want_bool and not np.issubdtype(got.dtype, np.number) and got.dtype != bool:
        raise AssertionError(f"[{case}] expected a numeric array, got dtype {got.dtype}")
    if got.shape != expected.shape:
        raise AssertionError(
            f"[{case}] wrong shape: expected {expected.shape}, got {got.shape}"
            + _diagnose(got, mistakes, atol, rtol)
        )
    if expected.dtype == bool:
        wrong = got.astype(bool) != expected
    else:
        wrong = ~np.isclose(got.astype(np.float64), expected.astype(np.float64), atol=atol, rtol=rtol)
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        tol = "" if expected.dtype == bool else f" (atol={atol:g}, rtol={rtol:g})"
        raise AssertionError(
            f"[{case}] first wrong index {index}: expected {expected[index]!r}, got {got[index]!r}{tol}; "
            f"{int(wrong.sum())} of {wrong.size} entries wrong"
            + _diagnose(got, mistakes, atol, rtol)
        )


def call(case: str, fn, *args, **kwargs):
    """Call the student's function; turn a crash into an ``AssertionError`` naming the case."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:
        raise AssertionError(f"[{case}] your function raised {type(err).__name__}: {err}") from err


def passed(name: str, num_cases: int) -> None:
    """The one-line success message."""
    print(f"✓ {name}: all {num_cases} cases passed")
