"""Run in a subprocess with 8 forced host devices (see tests/test_sharding.py); prints one JSON line.

Three AdamW steps of a small pi0 on one device (plain ``jax.jit``, no mesh: the oracle) and on the
meshes (8, 1), (4, 2), (1, 8) (``pi0lite.sharding``); reports the largest differences of loss,
gradients and parameters, and how every array ended up sharded.
"""

import json
import sys

import jax
import numpy as np

from pi0lite import sharding, train

SMALL = train.MICRO
MIN_BYTES = 2048  # well below openpi's 4 MiB so that the small model's matrices are sharded
MESHES = [(8, 1), (4, 2), (1, 8)]
STEPS, BATCH = 3, 16  # 2 examples per device (see the note in test_sharding.py)
# AdamW's first update is ~lr·sign(g): a gradient that is exactly zero in exact arithmetic but
# float noise in practice (SigLIP's key bias: softmax ignores a constant added to every logit of a
# query) would move by ±lr in a direction set by rounding. eps = 1e-4 keeps such noise (~1e-8)
# from being amplified (a move of ~lr·1e-4) while real gradients (mostly 1e-3..1) still get an
# Adam-sized step.
EPS = 1e-4


def leaves(tree):
    return {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def run(step, state, batches, put_batch):
    losses, grads = [], []
    for b in batches:
        state, m = step(state, put_batch(b))
        losses.append(float(m["loss"]))
        grads.append(jax.tree.map(np.asarray, m["grads"]))
    return state, losses, grads


def main():
    assert jax.device_count() == 8, jax.devices()
    graphdef, state0 = train.init_state(SMALL, seed=0, lr=1e-3, eps=EPS)
    host0 = jax.tree.map(np.asarray, state0)
    step = train.make_train_step(graphdef, return_grads=True)
    batches = [train.synthetic_rows(SMALL, np.arange(BATCH), i) for i in range(STEPS)]

    ref_state, ref_losses, ref_grads = run(jax.jit(step), jax.device_put(host0, jax.devices()[0]), batches,
                                           lambda b: jax.device_put(b, jax.devices()[0]))
    ref_params = leaves(jax.tree.map(np.asarray, ref_state))
    report = {}
    for data, fsdp in MESHES:
        mesh = sharding.make_mesh(fsdp)
        assert dict(mesh.shape) == {"data": data, "fsdp": fsdp}
        shardings = sharding.state_shardings(host0, mesh, MIN_BYTES)
        state = train.place_state(host0, shardings)
        fn = sharding.sharded_jit(step, mesh, shardings, num_args=2)
        bsh = sharding.batch_sharding(mesh)
        state, losses, grads = run(fn, state, batches, lambda b: jax.device_put(b, bsh))
        arrays = leaves(state)
        shards = {
            k: {"spec": str(x.sharding.spec), "shape": list(x.shape), "nbytes": int(x.nbytes),
                "shard_shape": list(x.addressable_shards[0].data.shape), "devices": len(x.sharding.device_set)}
            for k, x in arrays.items()
        }
        report[f"{data}x{fsdp}"] = {
            "loss": max(abs(a - b) for a, b in zip(losses, ref_losses)),
            # relative to the array's scale (the embedding's gradient is a sum over many tokens, ~3)
            "grads": max((float(np.max(np.abs(g[k] - r[k])) / max(1.0, float(np.max(np.abs(r[k]))))), k)
                         for g, r in zip(map(leaves, grads), map(leaves, ref_grads)) for k in r),
            "params": max((float(np.max(np.abs(np.asarray(arrays[k]) - ref_params[k]))), k) for k in ref_params),
            "shards": shards,
        }
    report["ref_losses"] = ref_losses
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    with jax.default_matmul_precision("highest"):
        main()
