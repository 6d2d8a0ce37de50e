"""The policy wrapper: save/load round trip, raw-observation inference, the shipped checkpoint."""

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite.toy import normalize
from pi0lite.config import TINY, GemmaConfig
from pi0lite.toy import env as toy
from pi0lite.toy.evaluate import evaluate, policy_fn
from pi0lite.pi0 import Pi0
from pi0lite.toy.policy import Policy, load_shipped
from pi0lite.toy.text import WordTokenizer

SMALL = TINY.replace(
    action_horizon=8,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)


def _policy(mode):
    rng = np.random.default_rng(0)
    norm = {"state": normalize.compute_stats(rng.normal(size=(50, 4))),
            "actions": normalize.compute_stats(rng.normal(0.1, 0.05, size=(50, 8, 2)))}
    tok = WordTokenizer.from_texts([toy.instruction(c) for c in range(3)])
    return Policy(Pi0(SMALL, rngs=nnx.Rngs(1)), norm, tok, mode=mode, num_steps=3, meta={"note": "test"})


@pytest.mark.parametrize("mode", ["flow", "mse"])
def test_save_load_roundtrip(tmp_path, mode):
    policy = _policy(mode)
    env = toy.BatchedToyEnv()
    obs = env.reset(toy.sample_scenes(np.random.default_rng(2), 3))
    key = jax.random.key(0)
    a = policy.infer(obs["image"], obs["state"], obs["instruction"], key)
    assert a.shape == (3, 8, 2) and np.all(np.isfinite(a))
    policy.save(tmp_path / "p")
    back = Policy.load(tmp_path / "p")
    assert back.mode == mode and back.num_steps == 3 and back.meta["note"] == "test"
    assert np.allclose(back.infer(obs["image"], obs["state"], obs["instruction"], key), a, atol=1e-6)


def test_bad_inputs(tmp_path):
    policy = _policy("mse")
    with pytest.raises(ValueError, match="same batch size"):
        policy.infer(np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 4)), ["go to the red square"], jax.random.key(0))
    with pytest.raises(ValueError, match="no policy checkpoint"):
        Policy.load(tmp_path)


def test_shipped_checkpoint_still_succeeds():
    policy = load_shipped()
    assert policy.mode == "flow" and policy.config == TINY
    metrics, _, _ = evaluate(policy_fn(policy), num_episodes=10, num_aligned=0, seed=7)
    assert metrics["success"] >= 0.8 and metrics["wrong"] == 0.0, metrics
