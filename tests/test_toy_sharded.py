"""The toy training on several devices (a subprocess with forced host devices) equals one device.

``pi0lite.toy.train.train`` (and pi0-FAST's ``train_fast``, the same loop) switches to
:func:`pi0lite.sharding.sharded_jit` on an ``(n, 1)`` mesh by itself when more than one device is
present (the drawn batch split over the devices); the oracle is the plain ``jax.jit`` run of this
one-device pytest process on the same data and config.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np

from pi0lite.openpi import flatten_params
from pi0lite.toy.train import TrainConfig, train
from pi0lite.toy.train_fast import train_fast
from tests.test_sharding import env_with_devices
from tests.toy_small import SMALL, small_arrays, small_fast

REPO = pathlib.Path(__file__).resolve().parents[1]
CFG = TrainConfig(steps=3, batch_size=16, warmup_steps=1)  # 2 examples per device
FAST_CFG = TrainConfig(mode="fast", steps=3, batch_size=8, warmup_steps=1)  # 4 per device on 2
TOL = 1e-5


# SigLIP's key bias gets a gradient that is zero in exact arithmetic (softmax ignores a constant
# added to every logit of a query): only round-off, which AdamW (eps 1e-8) turns into steps of
# about ±lr in a direction set by the summation order; measured 2.2e-5 apart here. Everything
# else must agree to 1e-5 (see also EPS in tests/multi/sharded_runs.py).
EXACT_ZERO_GRAD = "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/bias"


def run_on_devices(kind: str, n: int) -> dict:
    """The subprocess's report, after checking that it trained with the sharded step on all ``n`` devices."""
    out = subprocess.run([sys.executable, "-m", "tests.multi.toy_sharded", kind], cwd=REPO,
                         env=env_with_devices(n), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    multi = json.loads(out.stdout.strip().splitlines()[-1])
    assert multi["device_count"] == n
    assert multi["mesh"] == {"data": n, "fsdp": 1}  # the sharded step was used
    assert multi["devices_per_array"] == [n]  # every array of the trained state lives on all n devices
    return multi


def assert_same_training(multi: dict, history: np.ndarray, ref_params: dict, cfg: TrainConfig) -> None:
    np.testing.assert_allclose(multi["history"], history, atol=TOL, rtol=0)
    assert np.all(np.diff(history[:, 0]) != 0)  # it really trained
    assert sorted(multi["params"]) == sorted(ref_params) and len(ref_params) > 20
    diffs = {k: float(np.max(np.abs(np.asarray(multi["params"][k]) - np.asarray(v)))) for k, v in ref_params.items()}
    worst = max((d, k) for k, d in diffs.items() if k != EXACT_ZERO_GRAD)
    assert worst[0] < TOL, worst
    assert diffs[EXACT_ZERO_GRAD] < 3 * cfg.steps * cfg.lr  # within what a few Adam steps can move it


def test_toy_training_on_8_devices_equals_one_device():
    multi = run_on_devices("pi0", 8)
    ref = train(SMALL, CFG, small_arrays(), progress=False)
    assert_same_training(multi, ref.history, flatten_params(ref.trainable.pi0), CFG)


def test_fast_training_on_2_devices_uses_the_sharded_step_and_resumes():
    """Before: ``train_fast`` had its own copy of the loop, without ``step_for_devices``: on several
    devices it ran the plain jitted step on one of them (no mesh). Now it is ``train``'s loop; the run
    interrupted after step 1 and resumed from its checkpoint (on 2 devices) equals the whole run."""
    multi = run_on_devices("fast", 2)
    config, arrays = small_fast()
    ref = train_fast(config, FAST_CFG, arrays, progress=False)
    assert_same_training(multi, ref.history, flatten_params(ref.trainable.pi0_fast), FAST_CFG)
    np.testing.assert_allclose(multi["resumed_history"], ref.history, atol=TOL, rtol=0)
