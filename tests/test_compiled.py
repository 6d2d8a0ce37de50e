"""pi0lite.compiled: jit on split state gives the eager results, sees in-place updates, rejects mutation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from pi0lite import compiled


class Affine(nnx.Module):
    def __init__(self, rngs):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (3, 2)))
        self.count = nnx.Variable(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        return x @ self.w[...]


def apply(m, x):
    return m(x)


def test_bind_matches_eager_and_sees_in_place_updates():
    m = Affine(nnx.Rngs(0))
    x = jnp.arange(6.0).reshape(2, 3)
    run = compiled.bind(m, apply)
    np.testing.assert_allclose(run(x), np.asarray(x) @ np.asarray(m.w[...]), rtol=1e-6)
    m.w[...] = m.w[...] * 2.0  # an in-place update, as optax/nnx.Optimizer does
    np.testing.assert_allclose(run(x), np.asarray(x) @ np.asarray(m.w[...]), rtol=1e-6)
    # same structure and function -> the same compiled function (no re-trace)
    assert run.rebind(Affine(nnx.Rngs(1)))._run is run._run


def test_bind_rejects_a_function_that_updates_the_module():
    def bump(m, x):
        m.count[...] = m.count[...] + 1
        return m(x)

    with pytest.raises(ValueError, match="stateful"):
        compiled.bind(Affine(nnx.Rngs(0)), bump)(jnp.ones((1, 3)))


def test_stateful_step_equals_an_eager_optimizer_step():
    x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))

    def step(pair, x, y):
        model, opt = pair
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)
        return loss

    eager = Affine(nnx.Rngs(0))
    eager_opt = nnx.Optimizer(eager, optax.adam(0.1), wrt=nnx.Param)
    step((eager, eager_opt), x, y)
    step((eager, eager_opt), x, y)

    model = Affine(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(0.1), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    run = compiled.stateful(graphdef, step)
    state, _ = run(state, x, y)
    state, _ = run(state, x, y)
    nnx.update((model, opt), state)
    np.testing.assert_allclose(model.w[...], eager.w[...], rtol=1e-5)
    assert not np.allclose(model.w[...], Affine(nnx.Rngs(0)).w[...])  # it did move
