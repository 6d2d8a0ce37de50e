"""The notebook-00 checks accept the reference and reject realistic wrong answers."""

import jax
import pytest
from flax import nnx

from pi0lite.course.checks import check_count_params, check_two_normals
from pi0lite.params import count_params


def good_two_normals(key, shape):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, shape), jax.random.normal(k2, shape)


def test_two_normals_accepts_reference(capsys):
    check_two_normals(good_two_normals)
    assert capsys.readouterr().out.startswith("✓ two_normals")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda key, shape: (jax.random.normal(key, shape), jax.random.normal(key, shape)), "identical"),
        (lambda key, shape: (jax.random.normal(key, shape), good_two_normals(key, shape)[1]), "split it first"),
        (lambda key, shape: good_two_normals(key, shape)[::-1], "a and b are swapped"),
    ],
)
def test_two_normals_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_two_normals(wrong)


def test_count_params_accepts_reference(capsys):
    check_count_params(count_params)
    assert "count_params" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m: count_params(m, nnx.Variable), "batch statistics"),
        (lambda m: len(jax.tree.leaves(nnx.state(m, nnx.Param))), "counted arrays"),
        (lambda m: float(count_params(m)), "Python int"),
    ],
)
def test_count_params_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_count_params(wrong)
