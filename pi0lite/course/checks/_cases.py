"""Shared machinery for the ``check_*`` helpers of notebooks 03, 04 and 06.

A check is a list of named cases. Each case calls the student's function and compares the result
with the package reference: first the type (array-like), then the dtype kind, then the shape,
then the values (with explicit tolerances). The first failure raises ``AssertionError`` naming
the case, the first wrong index, expected vs got, and a hint. Hints come from *known mistakes*:
a check may list wrong implementations (the mutants its tests reject); when the student's output
matches one of them, that mistake's hint is shown, otherwise a generic one.

Nothing here prints except :func:`report_success` (the one success line of a check).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np


@dataclass(frozen=True, kw_only=True)
class Case:
    """One named check case: ``args`` go to the student's function, ``expected`` is the reference.

    ``mistakes`` maps a hint to the output a known wrong implementation would give on this case;
    it may be a zero-argument function returning that dict, evaluated only when the answer is
    wrong (so a correct answer never pays for computing the mutants).
    """

    name: str
    args: tuple
    expected: Any
    mistakes: dict[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)
    atol: float = 1e-5
    rtol: float = 1e-5


def _as_array(value: Any, what: str, case: str, fn_name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except Exception as err:
        raise AssertionError(
            f"{fn_name}, case '{case}': {what} is not array-like ({type(value).__name__}): {err}"
        ) from None


def _close(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Elementwise agreement; NaN never agrees (a NaN is always a bug in these exercises)."""
    if expected.dtype == bool or got.dtype == bool:
        return np.asarray(got == expected)
    return np.asarray(np.isclose(got.astype(np.float64), expected.astype(np.float64), atol=atol, rtol=rtol))


def _matches(got: np.ndarray, other: Any, atol: float, rtol: float) -> bool:
    other = np.asarray(other)
    return other.shape == got.shape and bool(np.all(_close(got, other, atol, rtol)))


def _fmt(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    return str(x)


def compare(
    fn_name: str, case: Case, got: Any, *, generic_hint: str = ""
) -> None:
    """Raise ``AssertionError`` unless ``got`` matches ``case.expected`` (dtype kind, shape, values)."""
    expected = np.asarray(case.expected)
    got_arr = _as_array(got, "the result", case.name, fn_name)
    if _matches(got_arr, expected, case.atol, case.rtol) and got_arr.dtype.kind == expected.dtype.kind:
        return  # the common case: right answer, no hint needed
    hint = generic_hint
    mistakes = case.mistakes() if callable(case.mistakes) else case.mistakes
    for mistake_hint, wrong in mistakes.items():
        if _matches(got_arr, wrong, case.atol, case.rtol):
            hint = mistake_hint
            break
    suffix = f"\nHint: {hint}" if hint else ""
    if expected.dtype == bool and got_arr.dtype != bool:
        raise AssertionError(
            f"{fn_name}, case '{case.name}': expected a bool array, got dtype {got_arr.dtype}{suffix}"
        )
    if expected.dtype.kind == "f" and got_arr.dtype.kind not in "f":
        raise AssertionError(
            f"{fn_name}, case '{case.name}': expected a float array, got dtype {got_arr.dtype}{suffix}"
        )
    if expected.dtype.kind in "iu" and got_arr.dtype.kind not in "iu":
        raise AssertionError(
            f"{fn_name}, case '{case.name}': expected an integer array, got dtype {got_arr.dtype}{suffix}"
        )
    if got_arr.shape != expected.shape:
        raise AssertionError(
            f"{fn_name}, case '{case.name}': expected shape {expected.shape}, got {got_arr.shape}{suffix}"
        )
    ok = _close(got_arr, expected, case.atol, case.rtol)
    if not np.all(ok):
        index = tuple(int(i) for i in np.argwhere(~ok)[0])
        raise AssertionError(
            f"{fn_name}, case '{case.name}': first wrong value at index {index}: "
            f"expected {_fmt(expected[index])}, got {_fmt(got_arr[index])} "
            f"({int((~ok).sum())} of {ok.size} values wrong){suffix}"
        )


def run_cases(
    fn_name: str,
    fn: Callable,
    cases: Sequence[Case],
    *,
    generic_hint: str = "",
    compare_fn: Callable[[str, Case, Any], None] | None = None,
) -> None:
    """Call ``fn(*case.args)`` for every case and compare; print one success line at the end."""
    if not callable(fn):
        raise AssertionError(f"{fn_name}: expected a function, got {type(fn).__name__}")
    for case in cases:
        try:
            # GPUs default to TF32 matmuls (~1e-3 relative error); checks compare float32 results
            with jax.default_matmul_precision("highest"):
                got = fn(*case.args)
        except NotImplementedError:
            raise
        except Exception as err:
            raise AssertionError(
                f"{fn_name}, case '{case.name}': your function raised {type(err).__name__}: {err}"
            ) from err
        if compare_fn is None:
            compare(fn_name, case, got, generic_hint=generic_hint)
        else:
            compare_fn(fn_name, case, got)
    report_success(fn_name, len(cases))


def report_success(fn_name: str, num_cases: int) -> None:
    """The one short line a passing check prints."""
    print(f"✓ {fn_name}: {num_cases}/{num_cases} cases passed")


def random_normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Deterministic float32 test data (NumPy, so checks do not depend on JAX's PRNG)."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def call_student(fn, case: str, *args):
    """Call the student's function; a crash becomes an ``AssertionError`` naming the case."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as err:
        raise AssertionError(f"{getattr(fn, '__name__', 'function')}, case '{case}': raised {type(err).__name__}: {err}") from err
