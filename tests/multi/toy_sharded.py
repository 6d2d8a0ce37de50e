"""Run in a subprocess with 8 forced host devices (see tests/test_toy_sharded.py); prints one JSON line.

The toy training of :func:`pi0lite.toy.train.train` on 8 devices: the same small model, data and
config as the single-device reference run by the test itself; reports the loss history, the final
parameters and how the trained state was laid out.
"""

import json
import sys

import jax
import numpy as np
from flax import nnx

from pi0lite.openpi import flatten_params
from pi0lite.toy import train as toy_train


def main():
    from tests.test_toy_sharded import CFG, SMALL, small_arrays

    assert jax.device_count() == 8, jax.devices()
    seen = {}
    original = toy_train.sharding.sharded_jit

    def spy(step, mesh, state_sharding, **kw):  # record the mesh the training used
        seen["mesh"] = dict(mesh.shape)
        return original(step, mesh, state_sharding, **kw)

    toy_train.sharding.sharded_jit = spy
    result = toy_train.train(SMALL, CFG, small_arrays(), progress=False)
    params = {k: np.asarray(v).tolist() for k, v in flatten_params(result.trainable.pi0).items()}
    devices = sorted({len(x.sharding.device_set) for x in jax.tree.leaves(nnx.state(result.trainable))})
    json.dump({"history": result.history.tolist(), "params": params, "mesh": seen.get("mesh"),
               "devices_per_array": devices}, sys.stdout)


if __name__ == "__main__":
    main()
