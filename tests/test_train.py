"""Training: a smoke run, the MSE baseline, resume-after-interruption, the aux head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.toy import normalize
from pi0lite.toy.grounding import AuxHead
from pi0lite.config import TINY, GemmaConfig
from pi0lite.toy.data import build_dataset, training_arrays
from pi0lite.toy import env as toy
from pi0lite.openpi import flatten_params as flat_params
from pi0lite.toy.text import WordTokenizer
from pi0lite.toy.train import TrainConfig, Trainable, batch_observation, loss_fn, train

SMALL = TINY.replace(
    action_horizon=4,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)


@pytest.fixture(scope="module")
def arrays():
    ds = build_dataset(3, seed=0, horizon=SMALL.action_horizon)
    tok = WordTokenizer.from_texts([toy.instruction(c) for c in range(3)])
    norm = {"state": normalize.compute_stats(ds.state), "actions": normalize.compute_stats(ds.actions)}
    return training_arrays(ds, tok, norm, max_token_len=SMALL.max_token_len, action_dim=SMALL.action_dim)


def test_flow_loss_matches_compute_loss(arrays):
    """Without aux, the training loss is pi0's own ``compute_loss`` with the same noise and time."""
    tr = Trainable(SMALL, rngs=nnx.Rngs(0))
    batch = {k: jnp.asarray(v[:5]) for k, v in arrays.items()}
    key = jax.random.key(1)
    total, parts = loss_fn(tr, batch, key, mode="flow", aux_weight=0.0)
    noise_key, time_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, batch["actions"].shape)
    time = jax.random.beta(time_key, 1.5, 1.0, (5,)) * 0.999 + 0.001
    obs = batch_observation(batch, SMALL.image_keys[0])
    ref = tr.pi0.compute_loss(key, obs, batch["actions"], noise=noise, time=time).mean()
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
