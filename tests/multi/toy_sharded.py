"""Run in a subprocess with forced host devices (see tests/test_toy_sharded.py); prints one JSON line.

``python -m tests.multi.toy_sharded pi0``: the toy training of :func:`pi0lite.toy.train.train`;
``... fast``: pi0-FAST's (:func:`pi0lite.toy.train_fast.train_fast`), whole and interrupted after
step 1 then resumed. The same small model, data and config as the single-device reference run by
the test itself; reports the loss histories, the final parameters and how the trained state was laid out.
"""

import json
import sys
import tempfile

import jax
import numpy as np
from flax import nnx

from pi0lite.openpi import flatten_params
from pi0lite.toy import train as toy_train
from pi0lite.toy.train_fast import train_fast


def main(kind: str):
    from tests.test_toy_sharded import CFG, FAST_CFG
    from tests.toy_small import SMALL, small_arrays, small_fast

    seen = {}
    original = toy_train.sharding.sharded_jit

    def spy(step, mesh, state_sharding, **kw):  # record the mesh the training used
        seen["mesh"] = dict(mesh.shape)
        return original(step, mesh, state_sharding, **kw)

    toy_train.sharding.sharded_jit = spy
    out = {}
    if kind == "pi0":
        result = toy_train.train(SMALL, CFG, small_arrays(), progress=False)
        model = result.trainable.pi0
    else:
        config, arrays = small_fast()
        result = train_fast(config, FAST_CFG, arrays, progress=False)
        model = result.trainable.pi0_fast
        with tempfile.TemporaryDirectory() as ckpt:
            train_fast(config, FAST_CFG, arrays, ckpt_dir=ckpt, stop_after=1, progress=False)
            out["resumed_history"] = train_fast(config, FAST_CFG, arrays, ckpt_dir=ckpt, progress=False).history.tolist()
    params = {k: np.asarray(v).tolist() for k, v in flatten_params(model).items()}
    devices = sorted({len(x.sharding.device_set) for x in jax.tree.leaves(nnx.state(result.trainable))})
    json.dump({**out, "history": result.history.tolist(), "params": params, "mesh": seen.get("mesh"),
               "devices_per_array": devices, "device_count": jax.device_count()}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
