"""Training: a smoke run, the MSE baseline, resume-after-interruption, the aux head; checkpoints
that refuse another config, hold exactly their history, and a run directory two runs cannot share."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.toy.grounding import AuxHead
from pi0lite.config import TINY
from pi0lite.openpi import flatten_params as flat_params
from pi0lite.toy import train as train_mod
from pi0lite.toy.files import DirectoryInUse
from pi0lite.toy.train import TrainConfig, Trainable, batch_observation, loss_fn, train, training_keys
from tests.toy_small import SMALL, small_arrays


@pytest.fixture(scope="module")
def arrays():
    return small_arrays()


CFG = TrainConfig(steps=8, batch_size=4, warmup_steps=1)


def test_flow_loss_matches_compute_loss(arrays):
    """Without aux, the training loss is pi0's own ``compute_loss`` (openpi's key split: _, noise, time)."""
    tr = Trainable(SMALL, rngs=nnx.Rngs(0))
    batch = {k: jnp.asarray(v[:5]) for k, v in arrays.items()}
    key = jax.random.key(1)
    total, parts = loss_fn(tr, batch, key, mode="flow", aux_weight=0.0)
    _, noise_key, time_key = jax.random.split(key, 3)
    noise = jax.random.normal(noise_key, batch["actions"].shape)
    time = jax.random.beta(time_key, 1.5, 1.0, (5,)) * 0.999 + 0.001
    obs = batch_observation(batch, SMALL.image_keys[0])
    ref = tr.pi0.compute_loss(jax.random.key(99), obs, batch["actions"], noise=noise, time=time).mean()
    assert np.allclose(total, ref, rtol=1e-5) and np.allclose(parts["loss"], ref, rtol=1e-5)
    total_aux, parts_aux = loss_fn(tr, batch, key, mode="flow", aux_weight=2.0)
    assert np.allclose(total_aux, ref + 2.0 * parts_aux["aux"], rtol=1e-5)


def test_aux_head_reads_the_right_token():
    head = AuxHead(4, rngs=nnx.Rngs(0))
    x = jnp.zeros((2, 5, 4)).at[0, 3].set(1.0).at[1, 1].set(1.0)
    out = head(x, jnp.array([3, 1]))
    assert np.allclose(out[0], out[1]) and not np.allclose(out[0], head(x, jnp.array([0, 0]))[0])


@pytest.mark.parametrize("mode", ["flow", "mse"])
def test_resume_equals_uninterrupted(arrays, tmp_path, mode):
    cfg = TrainConfig(mode=mode, steps=4, batch_size=4, warmup_steps=1)
    full = train(SMALL, cfg, arrays, progress=False)
    part = train(SMALL, cfg, arrays, ckpt_dir=tmp_path, stop_after=2, progress=False)
    assert part.history.shape == (2, 2)
    resumed = train(SMALL, cfg, arrays, ckpt_dir=tmp_path, progress=False)
    assert resumed.history.shape == (4, 2) and np.allclose(resumed.history, full.history, rtol=1e-5)
    a, b = flat_params(full.trainable), flat_params(resumed.trainable)
    assert all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert np.all(np.isfinite(full.history))


def test_train_config_validation():
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="diffusion")


def test_init_and_data_use_independent_keys(arrays):
    """Before: ``nnx.Rngs(seed)`` drew the first parameter from fold_in(key(seed), 0), the very key of
    step 0's batch. Now one key is split into an init stream and a data stream."""
    init_key, data_key = training_keys(0)
    untrained = train(SMALL, CFG, arrays, stop_after=0, progress=False).trainable
    a, b = flat_params(untrained), flat_params(Trainable(SMALL, rngs=nnx.Rngs(init_key)))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    old = flat_params(Trainable(SMALL, rngs=nnx.Rngs(0)))
    assert not np.array_equal(a["pi0/action_in_proj/kernel"], old["pi0/action_in_proj/kernel"])
    data = jax.random.key_data(jax.random.fold_in(data_key, 0))
    assert not np.array_equal(data, jax.random.key_data(jax.random.fold_in(init_key, 0)))
    assert not np.array_equal(data, jax.random.key_data(jax.random.fold_in(jax.random.key(0), 0)))


def test_checkpoint_holds_exactly_its_history(arrays, tmp_path, monkeypatch):
    """Kill right after the step-3 checkpoint (history was flushed every 25 steps only), resume."""
    full = train(SMALL, CFG, arrays, progress=False)
    saved, original = [], train_mod.save_checkpoint

    def save_then_die(ckpt_dir, trainable, opt, step, history, record):
        saved.append((step, history.shape[0]))
        original(ckpt_dir, trainable, opt, step, history, record)
        if step == 3:
            raise KeyboardInterrupt  # as a kill right after the checkpoint

    monkeypatch.setattr(train_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(SMALL, CFG, arrays, ckpt_dir=tmp_path, ckpt_every=3, progress=False)
    resumed = train(SMALL, CFG, arrays, ckpt_dir=tmp_path, ckpt_every=3, progress=False)
    assert saved == [(3, 3), (6, 6), (8, 8)]
    assert resumed.history.shape == (8, 2) and np.allclose(resumed.history, full.history, rtol=1e-5)


def test_checkpoint_names_parameters_and_refuses_another_config(arrays, tmp_path):
    train(SMALL, CFG, arrays, ckpt_dir=tmp_path, stop_after=3, progress=False)
    with np.load(tmp_path / "train_state.npz") as z:
        assert "state/0/pi0/action_in_proj/kernel" in z.files and "arr_0" not in z.files
        assert int(z["meta/step"]) == 3 and z["meta/history"].shape == (3, 2)
    cases = [(dict(lr=1e-3), "train.lr: 0.002 vs 0.001"), (dict(mode="mse"), "train.mode: 'flow' vs 'mse'"),
             (dict(steps=2), "already at step 3, past the requested 2 steps")]
    for change, message in cases:
        with pytest.raises(ValueError, match="different training config") as e:
            train(SMALL, dataclasses.replace(CFG, **change), arrays, ckpt_dir=tmp_path, progress=False)
        assert message in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="data.images"):
        train(SMALL, CFG, {k: v[:-1] for k, v in arrays.items()}, ckpt_dir=tmp_path, progress=False)
    assert train(SMALL, CFG, arrays, ckpt_dir=tmp_path, progress=False).history.shape == (8, 2)


def test_unwritable_checkpoint_dir_fails_before_training(arrays, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a directory")

    def no_training(*args):
        raise AssertionError("training started")

    monkeypatch.setattr(train_mod, "make_train_step", no_training)
    with pytest.raises(OSError, match="is not writable"):
        train(SMALL, CFG, arrays, ckpt_dir=tmp_path / "file" / "ckpt", progress=False)


def test_train_rejects_nan_data(arrays):
    bad = dict(arrays, state=arrays["state"].copy())
    bad["state"][5, 1] = np.nan
    with pytest.raises(ValueError, match=r"state contains NaN or inf \(first at sample 5"):
        train(SMALL, CFG, bad, progress=False)


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [{tests!r}, {tests!r} + '/..']  # test_train, and tests.toy_small
    from pi0lite.toy import train as T
    from test_train import CFG, SMALL, small_arrays

    original = T.save_checkpoint
    def save_and_wait(*args):
        original(*args)
        print("checkpoint", flush=True)
        time.sleep(600)  # hold the directory until the test kills us

    T.save_checkpoint = save_and_wait
    T.train(SMALL, CFG, small_arrays(), ckpt_dir={ckpt!r}, ckpt_every=2, progress=False)
""")


def test_second_run_into_one_directory_stops_at_once(arrays, tmp_path):
    """Before: both ran and one died late on the shared temp file. Now the second one stops at once;
    the lock dies with the first process, and a later run resumes its checkpoint."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(tests=os.path.dirname(__file__), ckpt=str(tmp_path))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "checkpoint"
        with pytest.raises(DirectoryInUse, match=f"directory in use by pid {holder.pid}"):
            train(SMALL, CFG, arrays, ckpt_dir=tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert train(SMALL, CFG, arrays, ckpt_dir=tmp_path, progress=False).history.shape == (8, 2)


def test_batch_observation_uses_the_models_image_conversion(arrays):
    """One uint8 → [−1, 1] conversion (the Observation's), also inside jit."""
    batch = {k: jnp.asarray(v[:3]) for k, v in arrays.items()}
    want = np.asarray(arrays["images"][:3], np.float64) / 255.0 * 2.0 - 1.0
    eager = batch_observation(batch, "cam").images["cam"]
    traced = jax.jit(lambda b: batch_observation(b, "cam").images["cam"])(batch)
    assert eager.dtype == jnp.float32 and np.allclose(eager, want, atol=1e-6) and np.allclose(traced, want, atol=1e-6)


def test_run_record_of_flow_and_mse_runs_has_only_the_original_fields():
    """Fields added later (RTC delay, KI's insulate / fast_weight) stay out of the record of runs
    that do not use them, so checkpoints written before those fields existed still resume (before:
    every flow/MSE checkpoint made before KI was refused as 'a different training config')."""
    original = ["aux_weight", "b2", "batch_size", "clip_norm", "final_lr_fraction", "lr", "mode", "seed",
                "steps", "warmup_steps", "weight_decay"]  # TrainConfig's fields when the record was introduced
    for mode in ("flow", "mse"):
        record = train_mod.run_record(TINY, TrainConfig(mode=mode), {"x": np.zeros((2, 3))})
        assert sorted(record["train"]) == original and record["data"] == {"x": [2, 3]}
    rtc = train_mod.run_record(TINY, TrainConfig(rtc_max_delay=4), {})["train"]
    assert rtc["rtc_max_delay"] == 4 and "insulate" not in rtc
    ki = train_mod.run_record(TINY, TrainConfig(mode="ki", aux_weight=0.0, insulate=False, fast_weight=0.5), {})["train"]
    assert ki["insulate"] is False and ki["fast_weight"] == 0.5


def test_checkpoint_recorded_with_unused_ki_fields_still_resumes(arrays, tmp_path):
    """A flow checkpoint written while insulate/fast_weight were recorded for every run resumes."""
    cfg = dataclasses.replace(CFG, steps=2)
    train(SMALL, cfg, arrays, ckpt_dir=tmp_path, progress=False)
    path = tmp_path / train_mod.CKPT_NAME
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    record = json.loads(str(data["meta/record"]))
    record["train"].update(insulate=True, fast_weight=1.0)
    data["meta/record"] = np.array(json.dumps(record))
    np.savez(path, **data)
    again = train(SMALL, cfg, arrays, ckpt_dir=tmp_path, progress=False)  # before: refused
    assert again.history.shape == (2, 2)
    record["train"].update(fast_weight=0.5, lr=1e-3)  # unused by a flow run: ignored; lr: still refused
    data["meta/record"] = np.array(json.dumps(record))
    np.savez(path, **data)
    with pytest.raises(ValueError, match=r"train\.lr: 0\.001 vs 0\.002"):
        train(SMALL, cfg, arrays, ckpt_dir=tmp_path, progress=False)
