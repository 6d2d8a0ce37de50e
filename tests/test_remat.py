"""Layers by Python loop, by ``lax.scan``, with and without remat: the same loss and gradients.

The oracle is the plain Python loop (the readable forward pass every other test checks against
openpi); scan and remat only change how XLA schedules and what the backward pass keeps.
"""

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite import train
from pi0lite.remat import run_layers


def test_run_layers_modes_agree_on_a_toy_stack():
    w = jax.random.normal(jax.random.key(0), (5, 3, 3)) * 0.5

    def one_layer(x, layer, extra):
        y = jax.numpy.tanh(x @ w[layer])
        return y, y.sum()

    x0 = jax.random.normal(jax.random.key(1), (2, 3))
    ref_x, ref_y = run_layers(one_layer, x0, 5)
    # an independent oracle: the loop written out
    x = x0
    for layer in range(5):
        x = jax.numpy.tanh(x @ w[layer])
    np.testing.assert_allclose(ref_x, x, rtol=1e-6)
    for scan in (False, True):
        for remat in (False, True):
            gx, gy = run_layers(one_layer, x0, 5, scan=scan, remat=remat)
            np.testing.assert_allclose(gx, ref_x, rtol=1e-6)
            np.testing.assert_allclose(gy, ref_y, rtol=1e-6)


@pytest.mark.parametrize("scan, remat", [(True, False), (False, True), (True, True)])
def test_pi0_loss_and_grads_do_not_depend_on_scan_or_remat(scan, remat):
    batch = train.synthetic_rows(train.MICRO, np.arange(2), 0)

    def loss_and_grads(cfg):
        model = train.Pi0(cfg, rngs=nnx.Rngs(0))
        return nnx.jit(nnx.value_and_grad(train.loss_fn))(model, batch)

    loss0, g0 = loss_and_grads(train.MICRO)
    loss1, g1 = loss_and_grads(train.MICRO.replace(scan_layers=scan, remat=remat))
    np.testing.assert_allclose(loss1, loss0, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):  # summation order differs: ~3e-6 measured
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
