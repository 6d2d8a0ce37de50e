"""Closed-loop evaluation: the rollout loop, metrics and their bookkeeping."""

import jax
import numpy as np
import pytest

from pi0lite.toy import env as toy
from pi0lite.toy.evaluate import eval_scenes, evaluate, expert_fn, rollout, summarize


def test_expert_rollout_succeeds():
    canonical, aligned = eval_scenes(20, 10, seed=3)
    for scenes in (canonical, aligned):
        r = rollout(expert_fn(scenes), scenes, jax.random.key(0))
        assert (r.outcome == toy.SUCCESS).all()
        assert r.paths.shape[0] == len(scenes) and np.allclose(r.paths[:, 0], scenes.start)
    assert summarize(rollout(expert_fn(aligned), aligned, jax.random.key(0)))["coin_flip_success"] == 1.0


def test_standing_still_times_out():
    scenes, _ = eval_scenes(5, 0, seed=4)
    still = lambda obs, key: np.zeros((len(obs["state"]), 16, 2))
    m, r, _ = evaluate(still, num_episodes=5, num_aligned=0, seed=4)
    assert m["timeout"] == 1.0 and m["success"] == 0.0 and m["episodes"] == 5
    assert (r.steps == toy.MAX_STEPS).all()


def test_straight_up_metrics_add_up():
    up = lambda obs, key: np.tile([0.0, 0.3], (len(obs["state"]), 16, 1))
    m, r, tied = evaluate(up, num_episodes=30, num_aligned=10, seed=5)
    assert m["crash"] > 0.5  # straight up hits the disc
    assert abs(m["success"] + m["crash"] + m["wrong"] + m["timeout"] - 1.0) < 1e-9
    assert m["aligned_crash"] == 1.0 and tied.coin_flip.all()


def test_bad_policy_output():
    scenes, _ = eval_scenes(3, 0, seed=6)
    with pytest.raises(ValueError, match="policy returned"):
        rollout(lambda obs, key: np.zeros((3, 2, 2)), scenes, jax.random.key(0))


# --- notebook 09 checks (check_run_episodes: tests/test_checks_rollout.py) -----------------------

from pi0lite.course import checks


def test_check_success_stats():
    def ok(outcome, coin):
        return {**{n: np.mean(outcome == c) for n, c in [("success", 1), ("crash", 2), ("wrong", 3), ("timeout", 4)]},
                "coin_flip_success": np.mean(outcome[coin] == 1)}

    checks.check_success_stats(ok)
    with pytest.raises(AssertionError, match="percents"):
        checks.check_success_stats(lambda o, c: {k: 100 * v for k, v in ok(o, c).items()})
    with pytest.raises(AssertionError, match="coin-flip episodes"):
        checks.check_success_stats(lambda o, c: {**ok(o, c), "coin_flip_success": np.sum((o == 1) & c) / len(o)})
