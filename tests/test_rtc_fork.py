"""The 'fork' task variant (pi0lite.toy.expert.TASKS), where inference delay costs success.

Oracles: a hand-placed aligned scene whose fork point is written out (0.5, 0.5 − 0.125 − 0.12);
the mirror image of the expert's plan (vx → −vx) is exactly the other side's plan with the same
timing, so a naive side switch can be built by hand and run in the environment.
"""

import numpy as np
import pytest

from pi0lite.toy import env as toy, expert as toy_expert
from pi0lite.toy.data import build_dataset, replay
from pi0lite.toy.jobs import parse_policies


def _aligned_scene():
    return toy.Scenes(squares=np.array([[[0.2, 0.85], [0.5, 0.85], [0.8, 0.85]]]), disc=np.array([[0.5, 0.5]]),
                      disc_radius=np.array([0.125]), start=np.array([[0.5, 0.1]]), goal=np.array([1]))


def test_fork_expert_goes_straight_to_the_fork_then_swerves():
    scene = _aligned_scene()
    np.testing.assert_allclose(toy_expert.fork_point(scene, 0.12), [[0.5, 0.5 - 0.125 - 0.12]])
    np.testing.assert_allclose(toy_expert.fork_point(scene, None), scene.start)
    plan = toy_expert.plan(scene, np.random.default_rng(0), "fork")
    assert plan.coin_flip[0] and plan.side[0] in (-1, 1)
    a = plan.actions[0, : plan.num_steps[0]]
    pos = scene.start[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(a * toy.DT, 0)])
    first = int(np.argmax(np.abs(a[:, 0]) > 0))  # the first step with a sideways velocity
    assert np.all(a[:first, 0] == 0) and np.all(a[:first, 1] > 0)  # straight up the axis before
    assert pos[first, 1] <= 0.255 < pos[first + 1, 1]  # ... and it is the step that crosses F
    assert np.sign(a[first + 3, 0]) == plan.side[0] * -1  # side +1 is left of travel (up): x decreases
    speed = np.linalg.norm(a, axis=-1).max()
    assert 0.12 * 1.75 - 0.01 <= speed <= 0.18 * 1.75 + 1e-9 and speed < toy.V_MAX  # 1.75x faster, no clipping
    _, _, _, outcome = replay(scene, a[None])
    assert outcome[0] == toy.SUCCESS


def test_a_late_side_switch_crashes_only_when_the_swerve_had_started():
    """Executing the plan until ``fork + d`` and then its mirror image (the other side, same timing) from
    its index ``fork + d``: what naive switching does when the new chunk chose the other side."""
    scene = _aligned_scene()
    a = toy_expert.plan(scene, np.random.default_rng(0), "fork").actions[0]
    first = int(np.argmax(np.abs(a[:, 0]) > 0))
    mirror = a * np.array([-1.0, 1.0])
    outcomes = []
    for d in range(6):
        switched = np.concatenate([a[: first + d], mirror[first + d :]])
        outcomes.append(int(replay(scene, switched[None])[3][0]))
    # d = 0: the swerve had not started, the other side is simply taken; 3+ committed steps: into the disc
    assert outcomes[:3] == [toy.SUCCESS] * 3 and outcomes[3:] == [toy.CRASH] * 3


def test_default_task_is_unchanged_and_fork_data_is_valid():
    scenes = toy.sample_scenes(np.random.default_rng(4), 300)
    old = toy_expert.plan(scenes, np.random.default_rng(1), "default")
    # pinned from the expert before task variants existed (commit b5687a0), same scenes and rng
    assert old.actions.shape == (300, 91, 2) and int(old.num_steps.sum()) == 20441
    assert old.num_steps[:8].tolist() == [73, 65, 71, 64, 66, 67, 57, 62]
    assert np.bincount(old.side + 1).tolist() == [154, 0, 146] and int(old.coin_flip.sum()) == 45
    np.testing.assert_allclose(np.abs(old.actions).sum(), 3284.0831323221764, rtol=1e-12)
    np.testing.assert_allclose(old.actions[7, 20], [-0.06762571254234184, 0.1310640503450028], rtol=1e-12)
    np.testing.assert_allclose(old.actions[123, 5], [-0.07126167225505964, 0.08577485497884896], rtol=1e-12)
    np.testing.assert_array_equal(toy_expert.plan(scenes, np.random.default_rng(1)).actions, old.actions)  # default
    fork = toy_expert.plan(scenes, np.random.default_rng(1), "fork")
    decided = ~fork.coin_flip & ~old.coin_flip  # the shorter side is the same (ties differ a little)
    np.testing.assert_array_equal(fork.side[decided], old.side[decided])
    assert fork.num_steps.mean() < 0.7 * old.num_steps.mean()  # faster
    gap = np.linalg.norm(fork.path - scenes.disc[:, None], axis=-1) - scenes.disc_radius[:, None] - toy.AGENT_RADIUS
    assert gap.min() > 0.04  # the expert's own clearance
    ds = build_dataset(5, seed=3, horizon=16, task="fork")
    assert np.all(ds.outcome == toy.SUCCESS)
    with pytest.raises(ValueError, match="task"):
        toy_expert.plan(scenes, np.random.default_rng(1), "slow")


def test_policies_of_different_tasks_are_not_trained_in_one_run():
    assert [j.task for j in parse_policies("pi0_fork,pi0_rtc_fork")] == ["fork", "fork"]
    with pytest.raises(ValueError, match="mixes training tasks"):
        parse_policies("pi0,pi0_fork")


def test_fork_sweep_writes_the_issue_shape_and_its_own_files(tmp_path, monkeypatch):
    """A tiny sweep of the variant: the same section shape, the fork expert's coin flips, files named _fork.

    The chunks come from a stand-in (random velocities, no model: nothing to load or compile); the
    sweep of a real flow policy is tests/test_rtc_eval.py::test_rtc_sweep_writes_the_issue_shape."""
    import json
    import types

    from pi0lite.toy import delayed, rtc_demo

    def stand_in(policy, method, *, exec_horizon):
        rng = np.random.default_rng(0)
        h = policy.config.action_horizon
        return lambda obs, key, prev, delay: rng.uniform(-0.2, 0.2, (len(obs["state"]), h, 2))

    monkeypatch.setattr(delayed, "chunk_fn", stand_in)
    flow = types.SimpleNamespace(config=types.SimpleNamespace(action_horizon=16))
    policies = {"naive": flow, "ensemble": flow}
    rtc_sec, details, rollouts = rtc_demo.sweep(policies, delays=(0, 4), num_episodes=1, num_aligned=1,
                                                progress=False, task="fork")
    assert list(rtc_sec) == list(policies)
    for rows in rtc_sec.values():
        assert list(rows) == ["0", "4"]
        assert all(set(m) == set(rtc_demo.FIELDS) and m["episodes"] == 2 for m in rows.values())
    r = rollouts["naive"][4]
    expected = toy_expert.plan(r.scenes, np.random.default_rng(0), "fork").coin_flip
    np.testing.assert_array_equal(r.coin_flip, expected)
    assert r.coin_flip[-1]  # the aligned scene
    rtc_demo.draw(tmp_path, rtc_sec, details, rollouts, delays=(0, 4), prefix="rtc_fork")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rtc_fork_jerk_hist.png", "rtc_fork_rollouts.png",
                                                          "rtc_fork_success_vs_delay.png"]
    assert rtc_demo.shipped_path("fork").name == "rtc_results_fork.json"
    assert rtc_demo.shipped_path().name == "rtc_results.json"
    with pytest.raises(ValueError, match="task"):
        rtc_demo.suffix("slow")
    json.dumps(rtc_sec)


def test_shipped_fork_policies_and_sweep():
    from pi0lite.toy import delayed, rtc_demo
    from pi0lite.toy.jobs import JOBS
    from pi0lite.toy.policy import ASSETS, Policy

    plain = Policy.load(ASSETS / JOBS["pi0_fork"].asset)
    trained = Policy.load(ASSETS / JOBS["pi0_rtc_fork"].asset)
    assert "rtc_max_delay" not in plain.meta and trained.meta["rtc_max_delay"] == 4
    shipped = rtc_demo.shipped("fork")
    assert shipped["rtc_details"]["settings"]["task"] == "fork"
    assert list(shipped["rtc"]) == list(delayed.METHODS)
    for rows in shipped["rtc"].values():
        assert list(rows) == [str(d) for d in rtc_demo.DELAYS]
        assert all(set(m) == set(rtc_demo.FIELDS) and m["episodes"] >= 200 for m in rows.values())


def test_evaluation_counts_the_coin_flips_of_the_policys_task():
    """``coin_flip_success`` of a policy trained on 'fork' data is over the fork expert's coin-flip scenes
    (before: always the default expert's). In the first 40 evaluation scenes the two experts tie in
    scenes 19, 36, 38; the default one in scene 11 too (found by hand from their plans)."""
    from pi0lite.toy.evaluate import evaluate

    def still(obs, key):  # a policy that never moves: every episode times out
        return np.zeros((len(obs["state"]), 16, 2))

    for task, tied in (("default", [11, 19, 36, 38]), ("fork", [19, 36, 38])):
        metrics, main, _ = evaluate(still, num_episodes=40, num_aligned=0, task=task)
        assert main.coin_flip.nonzero()[0].tolist() == tied and metrics["coin_flip_episodes"] == len(tied)


def test_ablation_with_a_fork_policy_is_refused_with_a_clear_message(tmp_path, capsys):
    from pi0lite.toy import demo

    with pytest.raises(SystemExit):
        demo.main(["--policies", "pi0_fork", "--ablation", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert "one run trains on one task" in err and "pi0_noaux: default" in err and "--ablation" in err
    assert "None" not in err  # the old message said "--task None does not match"
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_every_expert_task_has_its_rtc_jobs_trained_on_it():
    """rtc_demo's per-task job pairs cover exactly the expert's tasks, and each job trains on its task."""
    from pi0lite.toy import expert, rtc_demo
    from pi0lite.toy.jobs import JOBS

    assert set(rtc_demo.TASK_JOBS) == set(expert.TASKS)
    for task, names in rtc_demo.TASK_JOBS.items():
        assert [JOBS[n].task for n in names] == [task, task], (task, names)
    assert rtc_demo.SHIPPED == rtc_demo.shipped_path("default") and rtc_demo.shipped_path("fork").name == "rtc_results_fork.json"
