"""Checks for notebook 00 (JAX keys and ``nnx.Module`` basics).

Exercises: 0.1 ``two_normals(key, shape)`` (split a key, draw twice);
0.2 ``count_params(model)`` (count the scalars in the ``nnx.Param`` variables).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from pi0lite.course.checks._cases import Case, call_student as _call, compare, report_success
from pi0lite.params import count_params

__all__ = ["check_two_normals", "check_count_params"]


def _reference_two_normals(key, shape):
    key_a, key_b = jax.random.split(key)
    return jax.random.normal(key_a, shape), jax.random.normal(key_b, shape)


def check_two_normals(two_normals) -> None:
    """``two_normals(key, shape) -> (a, b)``: split ``key`` once into two keys, one draw from each."""
    cases = [(0, (3,)), (1, (2, 4)), (42, ())]
    for seed, shape in cases:
        name = f"key({seed}), shape {shape}"
        key = jax.random.key(seed)
        got = _call(two_normals, name, key, shape)
        if not isinstance(got, tuple) or len(got) != 2:
            raise AssertionError(f"two_normals, case '{name}': expected a tuple (a, b), got {type(got).__name__}")
        a, b = (np.asarray(x) for x in got)
        if a.shape == b.shape and a.size and np.array_equal(a, b):
            raise AssertionError(
                f"two_normals, case '{name}': a and b are identical: the same key gives the same "
                "numbers. Split the key and use a different half for each draw."
            )
        reused = {"you drew from the original key; split it first: k1, k2 = jax.random.split(key)": jax.random.normal(key, shape)}
        want_a, want_b = _reference_two_normals(key, shape)
        swapped = ("a and b are swapped: draw a from the first key of jax.random.split(key) and b from the "
                   "second (k1, k2 = jax.random.split(key); a from k1, b from k2).")
        compare("two_normals", Case(name=name + ", a", args=(), expected=want_a, mistakes=reused | {swapped: want_b}, atol=1e-6), a)
        compare("two_normals", Case(name=name + ", b", args=(), expected=want_b, mistakes=reused | {swapped: want_a}, atol=1e-6), b)
    report_success("two_normals", len(cases))


class _WithBatchNorm(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 5, rngs=rngs)  # 3·5 + 5 = 20 parameters
        self.norm = nnx.BatchNorm(5, rngs=rngs)  # scale + bias = 10 parameters (+10 statistics)


class _Stack(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(4, 4, use_bias=False, rngs=rngs) for _ in range(3)])


def check_count_params(count_params_fn) -> None:
    """``count_params(model) -> int``: the number of scalars in the model's ``nnx.Param`` variables."""
    rngs = nnx.Rngs(0)
    cases = [
        ("nnx.Linear(3, 4)", nnx.Linear(3, 4, rngs=rngs)),
        ("Linear + BatchNorm", _WithBatchNorm(rngs)),
        ("nnx.List of 3 bias-free Linear(4, 4)", _Stack(rngs)),
        ("abstract nnx.Linear(1000, 1000)", nnx.eval_shape(lambda: nnx.Linear(1000, 1000, rngs=nnx.Rngs(0)))),
    ]
    for case, model in cases:
        got = _call(count_params_fn, case, model)
        want = count_params(model)
        every_variable = count_params(model, nnx.Variable)
        leaves = len(jax.tree.leaves(nnx.state(model, nnx.Param)))
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            raise AssertionError(f"count_params, case '{case}': expected a Python int, got {type(got).__name__}: {got!r}")
        if got != want:
            hint = ""
            if got == every_variable:
                hint = "\nHint: you counted every variable; batch statistics are not parameters (use nnx.Param)."
            elif got == leaves:
                hint = "\nHint: you counted arrays, not their entries (use the size or shape of each leaf)."
            raise AssertionError(f"count_params, case '{case}': expected {want} parameters, got {got}{hint}")
    report_success("count_params", len(cases))
