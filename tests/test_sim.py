"""Meta-World adapter, data, training, evaluation and the shipped sim policy (pi0lite.sim).

Needs the ``sim`` extra and Debian's EGL (``make egl``); together these tests take about a minute.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import pi0lite.sim  # noqa: F401  (MUJOCO_GL=egl before mujoco is imported)
from pi0lite.sim import egl
from pi0lite.sim.metaworld import MAX_STEPS, MetaWorldEnv, check_task, upright

TASK = "button-press-topdown-v3"


@pytest.fixture(scope="module")
def env():
    e = MetaWorldEnv(TASK)
    yield e
    e.close()


def test_unknown_task_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown Meta-World task 'drawer-shut-v3'.*drawer-close-v3"):
        check_task("drawer-shut-v3")
    with pytest.raises(ValueError, match="known tasks"):
        MetaWorldEnv("push-v2")


def test_missing_egl_names_the_debian_packages(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    with pytest.raises(RuntimeError) as err:
        egl.require_egl(loadable=lambda name: False, dri_globs=())
    for pkg in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri", "libgbm1"):
        assert pkg in str(err.value)
    assert "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1" in str(err.value)
    # only the missing one is named as missing; an intact system passes
    with pytest.raises(RuntimeError, match=r"seem missing: libgbm1\."):
        egl.require_egl(loadable=lambda name: name != "libgbm.so.1", dri_globs=("/",))
    egl.require_egl(loadable=lambda name: True, dri_globs=("/",))


def test_observation_format(env):
    obs, info = env.reset(seed=3)
    assert set(obs) == {"image", "state", "instruction"}
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
    assert obs["instruction"] == "press the button from the top"
    raw = info["raw_obs"]  # Meta-World's 39-d observation: hand xyz, gripper, objects..., goal xyz
    np.testing.assert_allclose(obs["state"], raw[:4], rtol=1e-6)
    goal = raw[-3:]
    assert not np.any(np.isclose(obs["state"][:3], goal[:3], atol=1e-6)), "state must not contain the goal"
    assert obs["image"].std() > 10  # a real picture, not a blank frame
    obs2, _ = env.reset(seed=3)  # the same seed gives the same scene, another seed another one
    np.testing.assert_array_equal(obs["image"], obs2["image"])
    assert not np.array_equal(env.reset(seed=4)[0]["image"], obs["image"])
    o, r, terminated, truncated, info = env.step(np.zeros(4))
    assert isinstance(info["success"], bool) and not terminated and not truncated
    with pytest.raises(ValueError, match="action must have shape"):
        env.step(np.zeros(3))


def _project_upright(point, cam_pos, forward, fovy_deg, size):
    """Pinhole projection for a camera looking along ``forward`` with the world's +z as 'up' (no roll)."""
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    d = np.asarray(point) - cam_pos
    f = size / 2 / math.tan(math.radians(fovy_deg) / 2)
    x, y, z = d @ right, d @ up, d @ forward
    return size / 2 - f * y / z, size / 2 + f * x / z  # row (from the top), column (from the left)


def test_image_is_upright_on_a_known_scene(env):
    """Paint the button box blue and the wrist green; their pixels must sit where an upright camera puts them."""
    import mujoco

    env.reset(seed=0)
    m, d = env.env.model, env.env.data
    saved = m.geom_rgba.copy(), m.geom_matid.copy()
    try:
        centres = {}
        for body, colour in (("buttonbox", (0, 0, 1, 1)), ("right_hand", (0, 1, 0, 1))):
            b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, body)
            geoms = np.flatnonzero((m.geom_bodyid == b) & (m.geom_group < 3))  # the visible geoms
            m.geom_rgba[geoms], m.geom_matid[geoms] = colour, -1
            centres[body] = d.geom_xpos[geoms].mean(0)
        image = env.render()
    finally:
        m.geom_rgba[:], m.geom_matid[:] = saved
    cam = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, env.camera)
    cam_pos, forward = d.cam_xpos[cam], -d.cam_xmat[cam].reshape(3, 3)[:, 2]
    img = image.astype(int)
    masks = {"buttonbox": (img[..., 2] > 150) & (img[..., 0] < 60) & (img[..., 1] < 60),
             "right_hand": (img[..., 1] > 150) & (img[..., 0] < 60) & (img[..., 2] < 60)}
    for body, mask in masks.items():
        assert mask.sum() >= 3, f"{body}: painted pixels not found"
        rows, cols = np.nonzero(mask)
        want = _project_upright(centres[body], cam_pos, forward, m.cam_fovy[cam], 64)
        got = rows.mean(), cols.mean()
        assert abs(got[0] - want[0]) < 6 and abs(got[1] - want[1]) < 6, (body, got, want)
    # the raw MuJoCo frame is the same picture turned by 180°
    np.testing.assert_array_equal(upright(env.raw_frame()), env.render())


def test_expert_episode_succeeds_through_the_wrapper(env):
    obs, _ = env.reset(seed=1_000_000)
    for t in range(MAX_STEPS):
        obs, _, terminated, truncated, info = env.step(env.expert_action())
        if terminated or truncated:
            break
    assert info["success"] and terminated and t < 120


def test_training_smoke_20_steps_on_a_tiny_cached_dataset(tmp_path):
    from pi0lite.sim import data
    from pi0lite.sim.policy import SimPolicy
    from pi0lite.sim.train import SIM_CONFIG, main as train_main

    tasks = ("button-press-topdown-v3", "drawer-close-v3")
    ds = data.load_or_collect(tmp_path / "cache", tasks, episodes=1, workers=1, progress=False)
    assert ds.meta["kept_episodes"] == 2 and ds.meta["failures"] == dict.fromkeys(tasks, 0)
    assert set(np.unique(ds.task)) == {0, 1} and ds.images.dtype == np.uint8
    path = data.cache_path(tmp_path / "cache", tasks, episodes=1)
    again = data.load_or_collect(tmp_path / "cache", tasks, episodes=1, workers=1, progress=False)  # from the cache
    np.testing.assert_array_equal(again.actions, ds.actions)
    # chunks repeat an episode's last action past its end, never the next episode's first
    idx = ds.chunk_index(SIM_CONFIG.action_horizon)
    assert (ds.episode[idx] == ds.episode[:, None]).all()
    train_main(["--data", str(path), "--out", str(tmp_path / "job"), "--mode", "flow", "--steps", "20",
                "--batch-size", "8"])
    history = np.load(tmp_path / "job" / "history.npy")
    assert history.shape == (20, 2) and np.isfinite(history).all()
    policy = SimPolicy.load(tmp_path / "job" / "policy")
    out = policy.infer(ds.images[:2], ds.state[:2], ds.instructions[:2], __import__("jax").random.key(0))
    assert out.shape == (2, SIM_CONFIG.action_horizon, 4) and np.isfinite(out).all()
