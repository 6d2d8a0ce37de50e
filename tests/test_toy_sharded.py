"""The toy training on several devices (a subprocess with 8 forced host devices) equals one device.

``pi0lite.toy.train.train`` switches to :func:`pi0lite.sharding.sharded_jit` on a ``(8, 1)`` mesh by
itself when more than one device is present (the drawn batch split over the devices); the oracle is
the plain ``jax.jit`` run of this one-device pytest process on the same data and config.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np

from pi0lite.openpi import flatten_params
from pi0lite.toy.train import TrainConfig, train
from tests.test_sharding import env_with_devices
from tests.toy_small import SMALL, small_arrays

REPO = pathlib.Path(__file__).resolve().parents[1]
CFG = TrainConfig(steps=3, batch_size=16, warmup_steps=1)  # 2 examples per device
TOL = 1e-5


def test_toy_training_on_8_devices_equals_one_device():
    out = subprocess.run([sys.executable, "-m", "tests.multi.toy_sharded"], cwd=REPO, env=env_with_devices(8),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    multi = json.loads(out.stdout.strip().splitlines()[-1])
    assert multi["mesh"] == {"data": 8, "fsdp": 1}  # the sharded step was used
    assert multi["devices_per_array"] == [8]  # every array of the trained state lives on all 8 devices
    ref = train(SMALL, CFG, small_arrays(), progress=False)
    np.testing.assert_allclose(multi["history"], ref.history, atol=TOL, rtol=0)
    assert np.all(np.diff(ref.history[:, 0]) != 0)  # it really trained
    ref_params = flatten_params(ref.trainable.pi0)
    assert sorted(multi["params"]) == sorted(ref_params) and len(ref_params) > 20
    # SigLIP's key bias gets a gradient that is zero in exact arithmetic (softmax ignores a constant
    # added to every logit of a query): only round-off, which AdamW (eps 1e-8) turns into steps of
    # about ±lr in a direction set by the summation order; measured 2.2e-5 apart here. Everything
    # else must agree to 1e-5 (see also EPS in tests/multi/sharded_runs.py).
    exact_zero_grad = "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/bias"
    diffs = {k: float(np.max(np.abs(np.asarray(multi["params"][k]) - np.asarray(v)))) for k, v in ref_params.items()}
    worst = max((d, k) for k, d in diffs.items() if k != exact_zero_grad)
    assert worst[0] < TOL, worst
    assert diffs[exact_zero_grad] < 3 * CFG.steps * CFG.lr  # within what a few Adam steps can move it
