"""Each demo job evaluates its own policy (pi0lite.toy.job_eval): the saved metrics and rollouts are
those of a direct evaluation, and they are used only for the same settings and the same policy."""

from __future__ import annotations

import shutil

import numpy as np

from pi0lite.toy import job_eval
from pi0lite.toy.evaluate import evaluate, policy_fn
from pi0lite.toy.policy import ASSETS, Policy

HOW = dict(num_episodes=6, num_aligned=2, image_size=32, task="default")


def test_saved_evaluation_equals_a_direct_one_and_is_refused_when_stale(tmp_path):
    job = tmp_path / "mse"
    shutil.copytree(ASSETS / "toy_policy_mse", job / "policy")
    assert job_eval.load(job, **HOW) is None  # nothing saved yet
    saved = job_eval.run(job, **HOW)
    direct, main, tied = evaluate(policy_fn(Policy.load(job / "policy")), num_episodes=6, num_aligned=2)
    for k, v in direct.items():
        assert saved[k] == v, k
    metrics, main2, tied2 = job_eval.load(job, **HOW)
    assert metrics == saved
    for a, b in ((main, main2), (tied, tied2)):
        np.testing.assert_array_equal(a.outcome, b.outcome)
        np.testing.assert_array_equal(a.paths, b.paths)
        np.testing.assert_array_equal(a.steps, b.steps)
        np.testing.assert_array_equal(a.coin_flip, b.coin_flip)
        np.testing.assert_array_equal(a.scenes.goal_xy, b.scenes.goal_xy)
    # other settings, or a policy retrained since (other params.npz bytes): not used
    assert job_eval.load(job, **{**HOW, "num_episodes": 7}) is None
    assert job_eval.load(job, **{**HOW, "task": "fork"}) is None
    params = job / "policy" / "params.npz"
    params.write_bytes(params.read_bytes() + b"\0")
    assert job_eval.load(job, **HOW) is None
