"""Toy task: scenes, expert, rendering, env, dataset, normalisation and the instruction tokenizer."""

import numpy as np
import pytest

from pi0lite.observation import pad_to_dim
from pi0lite.toy import normalize
from pi0lite.toy.data import build_dataset, replay, training_arrays
from pi0lite.toy import env as toy, expert as toy_expert, render as toy_render
from pi0lite.toy.text import WordTokenizer, colour_positions, tokenize_batch

TEXTS = [toy.instruction(c) for c in range(3)]


def test_expert_succeeds_and_flips_coins():
    rng = np.random.default_rng(0)
    scenes = toy.sample_scenes(rng, 300)
    plan = toy_expert.plan(scenes, rng)
    pos, _, alive, outcome = replay(scenes, plan.actions)
    assert (outcome == toy.SUCCESS).all()
    assert 0.08 < plan.coin_flip.mean() < 0.35  # the multimodal episodes exist
    both = plan.side[plan.coin_flip]
    assert (both == 1).any() and (both == -1).any()  # and both sides are taken
    clearance = np.linalg.norm(pos - scenes.disc[:, None], axis=-1) - scenes.disc_radius[:, None]
    assert clearance[alive].min() > toy.AGENT_RADIUS + 0.05


def test_aligned_scenes_are_exact_ties():
    rng = np.random.default_rng(1)
    scenes = toy.sample_scenes(rng, 50, layout="aligned")
    assert np.allclose(scenes.start[:, 0], 0.5) and np.allclose(scenes.goal_xy[:, 0], 0.5)
    plan = toy_expert.plan(scenes, rng)
    assert plan.coin_flip.all()
    assert (replay(scenes, plan.actions)[3] == toy.SUCCESS).all()


def test_outcomes_crash_wrong_timeout():
    scenes = toy.sample_scenes(np.random.default_rng(2), 3)
    env = toy.BatchedToyEnv()
    env.reset(scenes)
    env.pos[0] = scenes.disc[0]  # on the disc
    wrong = (scenes.goal[1] + 1) % 3
    env.pos[1] = scenes.squares[1, wrong] - [0, 0.06]  # just below a wrong square
    out = env.step(np.array([[0, 0], [0, 0.3], [0, 0]]))
    assert out[0] == toy.CRASH and out[1] == toy.WRONG and out[2] == toy.RUNNING
    for _ in range(toy.MAX_STEPS):
        env.step(np.zeros((3, 2)))
    assert list(env.outcome) == [toy.CRASH, toy.WRONG, toy.TIMEOUT]
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((2, 2)))


def test_gym_style_env():
    env = toy.ToyEnv()
    obs, info = env.reset(seed=3)
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (4,) and info["goal"] in obs["instruction"]
    obs2, _ = toy.ToyEnv().reset(seed=3)
    assert np.array_equal(obs["image"], obs2["image"])  # seeded
    obs, reward, terminated, truncated, info = env.step([0.0, 0.1])
    assert np.allclose(obs["state"][2:], [0.0, 0.1]) and not terminated and not truncated


def test_render_shapes_and_colours():
    scenes = toy.sample_scenes(np.random.default_rng(4), 2)
    for size in (32, 64):
        img = toy_render.render(scenes, scenes.start, size)
        assert img.shape == (2, size, size, 3) and img.dtype == np.uint8
    img = toy_render.render(scenes, scenes.start, 64)[0].astype(int)
    red = scenes.squares[0, 0]
    row, col = int((1 - red[1]) * 64), int(red[0] * 64)
    assert img[row, col, 0] > 200 and img[row, col, 1] < 80  # the red square is red
    with pytest.raises(ValueError, match="image size"):
        toy_render.render(scenes, scenes.start, 48)


@pytest.mark.parametrize("size", [32, 64])
def test_windowed_agent_matches_whole_frame_blend(size):
    """draw_agents blends only a window around the dot: the bytes must equal blending every pixel
    (the oracle below), for dots anywhere, on pixel edges and centres, and half outside the arena."""
    rng = np.random.default_rng(size)
    static = toy_render.render_static(toy.sample_scenes(rng, 20), size)
    pos = rng.uniform(-0.1, 1.1, (3000, 2))
    pos[:200] = rng.integers(0, size + 1, (200, 2)) / size  # on pixel edges
    pos[200:400] = (rng.integers(0, size, (200, 2)) + 0.5) / size  # on pixel centres
    idx = rng.integers(0, 20, len(pos))
    x, y = toy_render.pixel_centres(size)
    r = np.hypot(x - pos[:, 0, None, None], y - pos[:, 1, None, None])
    a = np.clip(0.5 - (r - toy.AGENT_RADIUS) * size, 0.0, 1.0)[..., None]
    whole = np.round((static[idx] * (1 - a) + np.ones(3) * a) * 255).astype(np.uint8)
    got = toy_render.draw_agents(static, idx, pos)
    assert got.dtype == np.uint8 and got.shape == whole.shape
    np.testing.assert_array_equal(got, whole)
    assert (got != np.round(static[idx] * 255)).any(axis=(1, 2, 3))[400:].mean() > 0.5  # dots were drawn


def test_dataset_deterministic_and_consistent():
    a = build_dataset(6, seed=5, horizon=4)
    b = build_dataset(6, seed=5, horizon=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.actions, b.actions)
    assert a.actions.shape == (len(a), 4, 2) and a.images.shape == (len(a), 32, 32, 3)
    # the chunk's first action moves the state to the next state of the same episode
    same = a.episode[1:] == a.episode[:-1]
    nxt = a.state[:-1, :2] + toy.DT * a.actions[:-1, 0]
    assert np.allclose(nxt[same], a.state[1:, :2][same], atol=1e-5)
    assert (a.step[~np.r_[False, same]] == 0).all()
    assert a.instructions[0] == toy.instruction(int(a.scenes.goal[a.episode[0]]))


def test_normalize_roundtrip_and_padding():
    x = np.random.default_rng(6).normal(3.0, 2.0, (500, 16, 2)).astype(np.float32)
    for kind in normalize.KINDS:
        stats = normalize.compute_stats(x, kind=kind)
        y = np.asarray(pad_to_dim(stats.normalize(x), 4))
        assert y.shape == (500, 16, 4) and np.all(y[..., 2:] == 0)
        assert np.allclose(stats.unnormalize(y)[..., :2], x, atol=1e-4)
    z = normalize.compute_stats(x).normalize(x)
    assert np.allclose(z.reshape(-1, 2).mean(0), 0, atol=1e-4) and np.allclose(z.reshape(-1, 2).std(0), 1, atol=1e-3)
    q = normalize.compute_stats(x, kind="quantile").normalize(x).reshape(-1, 2)
    assert np.allclose(np.quantile(q, [0.01, 0.99], axis=0), [[-1, -1], [1, 1]], atol=1e-3)
    with pytest.raises(ValueError, match="down to 1"):
        pad_to_dim(x, 1)


def test_constant_feature_is_centred_not_blown_up():
    """Before: std 0 → (x − mean)/1e-6 at inference; now a constant feature gets std 1 (and q ∓ 1)."""
    x = np.stack([np.linspace(0, 1, 200), np.full(200, 0.3)], -1)
    for kind in normalize.KINDS:
        stats = normalize.compute_stats(x, kind=kind)
        z = stats.normalize(np.array([[0.5, 0.31]]))
        assert abs(z[0, 1] - 0.01) < 1e-4  # both kinds: (0.31 − 0.3) / 1, or ((0.31 − (0.3 − 1)) / 2)·2 − 1
    with pytest.raises(ValueError, match="std must be > 0"):
        normalize.NormStats(mean=np.zeros(2), std=np.array([1.0, 0.0]), q01=-np.ones(2), q99=np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        normalize.compute_stats(np.array([[0.0], [np.nan]]))


def test_stats_save_load(tmp_path):
    stats = {"actions": normalize.compute_stats(np.arange(10.0)[:, None], kind="quantile")}
    normalize.save_stats(stats, tmp_path / "norm.json")
    back = normalize.load_stats(tmp_path / "norm.json")
    assert back["actions"].kind == "quantile" and np.allclose(back["actions"].q99, stats["actions"].q99)


def test_word_tokenizer(tmp_path):
    tok = WordTokenizer.from_texts(TEXTS)
    ids = tok.encode("Go to the RED square")
    assert ids[0] == tok.bos_id and len(ids) == 6 and tok.decode(ids) == "go to the red square"
    assert tok.vocab_size == 4 + 7 and tok.pad_id == 0
    tok.save(tmp_path / "tokenizer.json")
    assert WordTokenizer.load(tmp_path / "tokenizer.json").encode(TEXTS[1]) == tok.encode(TEXTS[1])
    ids, mask = tokenize_batch(tok, TEXTS, 8)
    assert ids.shape == (3, 8) and mask.sum(1).tolist() == [6, 6, 6] and (ids[~mask] == tok.pad_id).all()
    assert colour_positions(tok, ids).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="max_len=3"):
        tokenize_batch(tok, TEXTS, 3)


def test_training_arrays():
    ds = build_dataset(3, seed=7, horizon=16)
    tok = WordTokenizer.from_texts(TEXTS)
    norm = normalize.dataset_stats(ds)
    arr = training_arrays(ds, tok, norm, max_token_len=8, action_dim=4)
    n = len(ds)
    assert arr["state"].shape == (n, 4) and arr["actions"].shape == (n, 16, 4)
    assert arr["tokens"].shape == (n, 8) and arr["aux_pos"].tolist() == [4] * n
    assert np.abs(arr["aux_target"]).max() < 1.5
