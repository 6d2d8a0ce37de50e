"""Delayed execution on the toy task (pi0lite.toy.delayed), its metrics, the RTC figures, training-time RTC.

Oracles: scripted chunk functions whose actions encode (chunk, index), so the executed sequence can
be read back from the positions and compared with the hand-derived schedule; hand-made paths for the
jerk and side-switch metrics; the per-token time written out by hand for the delayed training loss.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from flax import nnx

from pi0lite import rtc
from pi0lite.course.viz import rtc as viz_rtc
from pi0lite.course.viz._readability import figure_problems
from pi0lite.toy import delayed, env as toy
from pi0lite.toy.train import TrainConfig, Trainable, batch_observation, loss_fn, run_record

H, S = 16, 8


def _scripted(calls):
    """Chunk m, index i -> action (0.002·(m + 1), 0.001·i): small, readable back from the path."""

    def fn(obs, key, prev, delay):
        m = len(calls)
        calls.append(prev)
        n = len(obs["state"])
        i = np.arange(H)
        chunk = np.stack([np.full(H, 0.002 * (m + 1)), 0.001 * i], -1)
        return np.broadcast_to(chunk, (n, H, 2)).copy()

    return fn


def _scenes(n=3):
    return toy.sample_scenes(np.random.default_rng(0), n)


@pytest.mark.parametrize("delay", [0, 3])
def test_naive_execution_follows_the_schedule(delay):
    calls = []
    r = delayed.rollout_delayed(_scripted(calls), _scenes(), jax.random.key(0), method="naive", delay=delay)
    actions = np.diff(r.paths[0], axis=0) / toy.DT
    t = np.arange(len(actions))
    chunk = np.maximum(0, (t - delay) // S)  # written out: chunk m runs from m·s + d, from its index d
    index = t - chunk * S
    np.testing.assert_allclose(actions[:, 0], 0.002 * (chunk + 1), atol=1e-9)
    np.testing.assert_allclose(actions[:, 1], 0.001 * index, atol=1e-9)
    assert all(p is None for p in calls)  # naive never passes a previous chunk
    np.testing.assert_array_equal(r.boundaries[:3], [S + delay, 2 * S + delay, 3 * S + delay])


def test_rtc_methods_get_the_previous_chunk_shifted_by_s():
    calls = []
    delayed.rollout_delayed(_scripted(calls), _scenes(), jax.random.key(0), method="rtc", delay=2)
    assert calls[0] is None
    prev = calls[1]  # chunk 0 re-indexed: prev[i] = chunk0[s + i], the tail repeating its last action
    np.testing.assert_allclose(prev[0, :, 1], 0.001 * np.minimum(np.arange(H) + S, H - 1))


def test_ensemble_averages_the_chunks_that_arrived():
    r = delayed.rollout_delayed(_scripted([]), _scenes(), jax.random.key(0), method="ensemble", delay=2)
    a = np.diff(r.paths[0], axis=0) / toy.DT
    w = np.exp(-0.01 * np.arange(2))
    w /= w.sum()
    # step 9: chunk 1 (asked at step 8) arrives only at 8 + 2 = 10 -> chunk 0 alone
    np.testing.assert_allclose(a[9], [0.002, 0.009], atol=1e-9)
    # step 10: chunk 0 index 10 (older, weight w0) and chunk 1 index 2
    np.testing.assert_allclose(a[10], [w[0] * 0.002 + w[1] * 0.004, w[0] * 0.010 + w[1] * 0.002], atol=1e-9)


def test_boundary_jerk_and_side_switches_on_hand_made_paths():
    v = np.zeros((1, 12, 2))
    v[0, 6:, 0] = 0.3  # the velocity jumps at step 6
    paths = np.concatenate([np.zeros((1, 1, 2)), np.cumsum(v * toy.DT, axis=1)], axis=1)
    jerk = delayed.boundary_jerk(paths, np.array([12]), np.array([6]))
    # Δ³p over actions 4,5,6 = DT·(0.3 − 0 + 0) ; over 5,6,7 = DT·(0.3 − 0.6 + 0) -> both 0.3·DT / DT³
    np.testing.assert_allclose(jerk, [0.3 / toy.DT**2])
    assert delayed.boundary_jerk(paths, np.array([7]), np.array([6])).size == 0  # step 7 never ran
    scenes = _scenes(2)
    dx, dy = scenes.disc[:, 0], scenes.disc[:, 1]
    one_side = np.stack([np.full(5, dx[0] - 0.2), dy[0] + np.linspace(-0.1, 0.1, 5)], -1)
    both = np.stack([dx[1] + np.array([-0.2, -0.2, 0.2, 0.2, 0.2]), dy[1] + np.linspace(-0.1, 0.1, 5)], -1)
    np.testing.assert_array_equal(delayed.side_switches(scenes, np.stack([one_side, both])), [False, True])


def test_chunk_fn_rtc_train_keeps_the_committed_actions():
    from pi0lite.toy.policy import load_shipped

    policy = load_shipped("flow")
    scenes = _scenes(2)
    obs = toy.BatchedToyEnv().reset(scenes)
    prev = np.asarray(policy.infer(obs["image"], obs["state"], obs["instruction"], jax.random.key(1)))
    out = delayed.chunk_fn(policy, "rtc_train")(obs, jax.random.key(2), prev, 3)
    np.testing.assert_allclose(out[:, :3], prev[:, :3], atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        delayed.chunk_fn(policy, "act")


def test_rtc_figures_are_readable():
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    viz_rtc.plot_prefix_weights({s: rtc.prefix_weights(3, 8, 16, s) for s in rtc.SCHEDULES}, delay=3, exec_horizon=8,
                                ax=axes[0, 0])
    rng = np.random.default_rng(0)
    viz_rtc.plot_success_vs_delay([0, 1, 2, 3, 4], {m: rng.uniform(0.8, 1, 5) for m in delayed.METHODS},
                                  ax=axes[0, 1])
    path = np.stack([np.full(60, 0.5) + 0.2 * np.sin(np.linspace(0, 3, 60)), np.linspace(0.1, 0.9, 60)], -1)
    viz_rtc.plot_chunk_boundaries(path, [8, 20, 28, 36, 44, 52, 70], ax=axes[1, 0], title="rtc, d = 4")
    viz_rtc.plot_jerk_histogram({m: rng.lognormal(-1, 1, 300) for m in delayed.METHODS}, ax=axes[1, 1])
    fig.tight_layout()
    assert figure_problems(fig) == []
    plt.close(fig)


# --- training-time RTC in toy training -------------------------------------------------------------


def test_delayed_training_loss_matches_hand_written_per_token_time():
    from test_train import SMALL, small_arrays

    arrays = small_arrays()
    tr = Trainable(SMALL, rngs=nnx.Rngs(0))
    batch = {k: jnp.asarray(v[:5]) for k, v in arrays.items()}
    key = jax.random.key(1)
    _, parts = loss_fn(tr, batch, key, mode="flow", aux_weight=0.0, rtc_max_delay=3)
    _, noise_key, time_key = jax.random.split(key, 3)
    actions = batch["actions"]
    noise = jax.random.normal(noise_key, actions.shape)
    time = jax.random.beta(time_key, 1.5, 1.0, (5,)) * 0.999 + 0.001
    delay = np.asarray(rtc.sample_delay(jax.random.fold_in(key, 1), 5, 3))
    a = SMALL.action_horizon
    tt = np.where(np.arange(a)[None] < delay[:, None], 0.0, np.asarray(time)[:, None]).astype(np.float32)
    x_t = tt[..., None] * np.asarray(noise) + (1 - tt[..., None]) * np.asarray(actions)
    obs = batch_observation(batch, SMALL.image_keys[0])
    v, _ = tr.pi0.forward(obs, jnp.asarray(x_t), jnp.asarray(tt))
    per = np.mean((np.asarray(v) - (np.asarray(noise) - np.asarray(actions))) ** 2, -1)
    mask = np.arange(a)[None] >= delay[:, None]
    np.testing.assert_allclose(parts["loss"], (per * mask).sum() / mask.sum(), rtol=1e-5)
    assert run_record(SMALL, TrainConfig(), arrays)["train"].keys() == run_record(
        SMALL, TrainConfig(rtc_max_delay=2), arrays)["train"].keys() - {"rtc_max_delay"}
    with pytest.raises(ValueError, match="rtc_max_delay"):
        TrainConfig(mode="mse", rtc_max_delay=2)


def test_rtc_sweep_writes_the_issue_shape(tmp_path):
    """The ``rtc`` section is exactly {method: {str(d): {success, crash, jerk_mean, side_switch_rate, episodes}}}."""
    import json

    from pi0lite.toy import rtc_demo
    from pi0lite.toy.policy import load_shipped

    flow = load_shipped("flow")
    policies = {"naive": flow, "rtc_train": flow}  # the flow policy stands in for pi0_rtc here (cheap compiles)
    rtc_sec, details, rollouts = rtc_demo.sweep(policies, delays=(0, 4), num_episodes=1, num_aligned=1, progress=False)
    assert list(rtc_sec) == list(policies)
    for rows in rtc_sec.values():
        assert list(rows) == ["0", "4"]
        for m in rows.values():
            assert set(m) == set(rtc_demo.FIELDS) and m["episodes"] == 2 and 0 <= m["success"] <= 1
    rtc_demo.draw(tmp_path, rtc_sec, details, rollouts, delays=(0, 4))
    assert all((tmp_path / f).stat().st_size > 0 for f in ("rtc_success_vs_delay.png", "rtc_rollouts.png",
                                                           "rtc_jerk_hist.png"))
    assert rtc_demo.markdown_table(rtc_sec, details).count("\n") == 2 + 2 * 2
    json.dumps(rtc_sec)  # plain JSON types


def test_shipped_rtc_policy_and_results():
    from pi0lite.toy import rtc_demo
    from pi0lite.toy.jobs import JOBS
    from pi0lite.toy.policy import ASSETS, Policy

    policy = Policy.load(ASSETS / JOBS["pi0_rtc"].asset)
    assert policy.meta["rtc_max_delay"] == 4 and policy.meta["train_steps"] == 5000
    shipped = rtc_demo.shipped()["rtc"]
    assert list(shipped) == list(delayed.METHODS)
    for rows in shipped.values():
        assert list(rows) == [str(d) for d in rtc_demo.DELAYS]
        assert all(set(m) == set(rtc_demo.FIELDS) and m["episodes"] >= 200 for m in rows.values())
