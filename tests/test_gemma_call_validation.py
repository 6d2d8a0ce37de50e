"""A wrong ``Gemma.__call__`` (as in exercise 8.2) fails before any einsum, naming the argument."""

import jax.numpy as jnp
import pytest
from flax import nnx

from pi0lite.config import GEMMA_DUMMY
from pi0lite.gemma import Gemma

B, SLOTS = 2, 10


@pytest.fixture(scope="module")
def call():
    model = Gemma([GEMMA_DUMMY], vocab_size=32, rngs=nnx.Rngs(0))
    kv = (jnp.zeros((4, B, SLOTS, 1, 16)), jnp.zeros((4, B, SLOTS, 1, 16)))
    x = model.embedder.encode(jnp.zeros((B, 1), jnp.int32))
    good = dict(positions=jnp.zeros((B, 1), jnp.int32), mask=jnp.ones((B, 1, SLOTS), bool), kv_cache=kv, cache_index=3)

    # What a student calls: the plain method. The test suite wraps the package's public functions in
    # jaxtyping + beartype (tests/conftest.py), which would reject a wrong rank before our message.
    method = getattr(Gemma.__call__, "__wrapped__", Gemma.__call__)

    def run(xs=None, **change):
        return method(model, [x] if xs is None else xs, **(good | change))

    run.x, run.kv = x, kv
    return run


def test_right_call_runs(call):
    (out,), (k, v) = call()
    assert out.shape == (B, 1, 64) and k.shape == (4, B, SLOTS, 1, 16)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(positions=jnp.zeros((B,), jnp.int32)), r"positions must be \[batch, new tokens\] = \(2, 1\)"),
        (dict(mask=jnp.ones((B, SLOTS), bool)), r"mask must be \[batch, new tokens, keys\] = \(2, 1, 10\)"),
        (dict(cache_index=None), r"mask .* = \(2, 1, 11\) \(kv_cache without cache_index"),
        (dict(kv_cache=None), r"cache_index is given but kv_cache is None"),
        (dict(kv_cache=jnp.zeros((4, B, SLOTS, 1, 16))), r"kv_cache must be a \(keys, values\) pair"),
        (dict(kv_cache=(jnp.zeros((4, B, SLOTS, 2, 16)),) * 2), r"kv_cache must be .* = \(4, 2, 'slots', 1, 16\)"),
    ],
)
def test_wrong_call_names_the_argument(call, change, message):
    with pytest.raises(ValueError, match=message):
        call(**change)


def test_unwrapped_input_names_xs(call):
    with pytest.raises(ValueError, match=r"xs must be a list .*pass \[x\]"):
        call(xs=call.x)
