"""The shipped Meta-World policy (pi0lite/assets/sim_policy) still solves its tasks: 2 episodes."""

from __future__ import annotations

import json

import pi0lite.sim  # noqa: F401  (MUJOCO_GL=egl before mujoco is imported)
from pi0lite.sim.metaworld import TASKS


def test_shipped_policy_still_succeeds():
    """Its first 2 evaluation episodes per task (the demo's own batch layout) succeed as often as they did."""
    from pi0lite.sim.evaluate import evaluate, policy_fn
    from pi0lite.sim.policy import ASSETS, load_shipped, shipped_results

    size = sum(f.stat().st_size for f in (ASSETS / "sim_policy").iterdir())
    assert size <= 10 * 2**20, f"shipped sim policy is {size / 2**20:.1f} MB"
    shipped = shipped_results()["policies"]["pi0"]["outcomes"]
    expected = sum(sum(shipped[t][:2]) for t in TASKS)
    r = evaluate(policy_fn(load_shipped()), TASKS, episodes=2, progress=False)
    assert expected >= 5 and r.success.sum() >= expected - 1, (r.success, expected)
    assert json.loads(json.dumps(r.summary()))["tasks"][TASKS[0]]["episodes"] == 2
