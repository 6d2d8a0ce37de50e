"""Exercise 9.1's check: the receding-horizon loop, with a stochastic policy so keys matter."""

import jax
import pytest

from pi0lite.course import checks
from pi0lite.toy import env as toy


def _loop(per_replan=lambda execute: execute, keys="fold_in"):
    def run_episodes(fn, scenes, key, execute):
        env = toy.BatchedToyEnv()
        obs = env.reset(scenes)
        replan = 0
        while not env.done.all() and env.t.max() < toy.MAX_STEPS:
            if keys == "fold_in":
                sub = jax.random.fold_in(key, replan)
            elif keys == "split":
                key, sub = jax.random.split(key)
            else:  # the same key at every replan
                sub = key
            chunk = fn(obs, sub)
            for j in range(per_replan(execute)):
                env.step(chunk[:, j])
            obs = env.observe()
            replan += 1
        return env.outcome, env.pos

    return run_episodes


@pytest.mark.parametrize("keys", ["fold_in", "split"])
def test_accepts_any_fresh_key_per_replan(keys, capsys):
    checks.check_run_episodes(_loop(keys=keys))
    assert "✓ run_episodes: 3/3" in capsys.readouterr().out


def test_rejects_the_same_key_at_every_replan():
    with pytest.raises(AssertionError, match="same key at .* replans"):
        checks.check_run_episodes(_loop(keys="same"))


def test_rejects_wrong_number_of_executed_actions():
    with pytest.raises(AssertionError, match="executes 16 action"):
        checks.check_run_episodes(_loop(lambda execute: 16))  # executes the whole chunk
    with pytest.raises(AssertionError, match="executes 1 action"):
        checks.check_run_episodes(_loop(lambda execute: 1))  # replans every step


def test_the_policy_noise_changes_the_paths():
    """Without the key-dependent noise the check could not tell keys apart: the noise must move the paths."""
    import numpy as np

    from pi0lite.course.checks.rollout import _replay

    scenes = toy.sample_scenes(np.random.default_rng(0), 12)
    a = _replay(scenes, [jax.random.key(1)] * 40, 8)
    b = _replay(scenes, [jax.random.key(2)] * 40, 8)
    assert not np.allclose(a[1], b[1], atol=1e-3)
