import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite import flow
from pi0lite.config import TINY
from pi0lite.pi0 import Observation, Pi0

B = 2


@pytest.fixture(scope="module")
def model():
    return Pi0(TINY, rngs=nnx.Rngs(0))


def make_obs(seed=0, state_dim=4, prompt_len=5, image_size=32, cameras=("base_0_rgb",)):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(3, TINY.vocab_size, (B, prompt_len))
    prompt[1, 3:] = 0
    return Observation.from_numpy(
        images={c: rng.uniform(-1, 1, (B, image_size, image_size, 3)).astype(np.float32) for c in cameras},
        state=rng.normal(size=(B, state_dim)).astype(np.float32),
        tokenized_prompt=prompt,
        tokenized_prompt_mask=prompt != 0,
    )


@nnx.jit(static_argnames=("use_cache",))
def sample(model, obs, noise, use_cache):
    return model.sample_actions(jax.random.key(0), obs, noise=noise, use_cache=use_cache)


@nnx.jit
def loss_fn(model, obs, actions, noise, time):
    return model.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time)


def test_cached_sampling_equals_uncached(model):
    obs = make_obs()
    noise = jax.random.normal(jax.random.key(1), (B, TINY.action_horizon, TINY.action_dim))
    cached = sample(model, obs, noise, True)
    uncached = sample(model, obs, noise, False)
    assert cached.shape == (B, TINY.action_horizon, TINY.action_dim)
    np.testing.assert_allclose(cached, uncached, atol=1e-5)


def test_interpolate_endpoints_follow_openpi_convention():
    """t = 1 is pure noise, t = 0 the data, and in between x_t = t·noise + (1 − t)·actions."""
    noise = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4, 2)), jnp.float32)
    actions = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 2)), jnp.float32)
    np.testing.assert_array_equal(flow.interpolate(noise, actions, jnp.ones(3)), noise)
    np.testing.assert_array_equal(flow.interpolate(noise, actions, jnp.zeros(3)), actions)
    t = np.array([0.25, 0.5, 1.0], np.float32)
    expected = t[:, None, None] * np.asarray(noise) + (1 - t[:, None, None]) * np.asarray(actions)
    np.testing.assert_allclose(flow.interpolate(noise, actions, jnp.asarray(t)), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(flow.target_velocity(noise, actions), np.asarray(noise) - np.asarray(actions))


@pytest.mark.parametrize("t, model_sees", [(1.0, "noise"), (0.0, "actions")])
def test_loss_shape_and_time_convention(model, t, model_sees):
    """Through the public API: at t = 1 the model is fed the noise, at t = 0 the actions, and the
    target is noise − actions (narrower actions are zero-padded to action_dim)."""
    obs = make_obs()
    actions = jax.random.normal(jax.random.key(2), (B, TINY.action_horizon, 2))  # narrower: padded
    noise = jax.random.normal(jax.random.key(3), (B, TINY.action_horizon, TINY.action_dim))
    padded = jnp.pad(actions, ((0, 0), (0, 0), (0, TINY.action_dim - 2)))
    time = jnp.full((B,), t)
    loss = loss_fn(model, obs, actions, noise, time)
    assert loss.shape == (B, TINY.action_horizon)
    v_t, _ = model.forward(obs, noise if model_sees == "noise" else padded, time)
    expected = np.mean((np.asarray(v_t) - (np.asarray(noise) - np.asarray(padded))) ** 2, -1)
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_loss_target_is_noise_minus_actions(model):
    """If v_t were exactly noise − actions the loss is zero: check the sign via forward()."""
    obs = make_obs()
    actions = jax.random.normal(jax.random.key(4), (B, TINY.action_horizon, TINY.action_dim))
    noise = jax.random.normal(jax.random.key(5), actions.shape)
    time = jnp.array([0.25, 0.75])
    x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * actions
    v_t, prefix_out = model.forward(obs, x_t, time)
    expected = jnp.mean((v_t - (noise - actions)) ** 2, -1)
    np.testing.assert_allclose(loss_fn(model, obs, actions, noise, time), expected, rtol=1e-5, atol=1e-6)
    assert prefix_out.shape == (B, TINY.prefix_len, TINY.paligemma.width)


def test_trajectory_starts_at_noise(model):
    obs = make_obs()
    noise = jax.random.normal(jax.random.key(6), (B, TINY.action_horizon, TINY.action_dim))
    actions, traj = model.sample_actions(jax.random.key(0), obs, noise=noise, num_steps=2, return_trajectory=True)
    assert traj.shape == (3, B, TINY.action_horizon, TINY.action_dim)
    np.testing.assert_array_equal(traj[0], noise)
    np.testing.assert_array_equal(traj[-1], actions)


def test_attention_maps(model):
    obs = make_obs()
    x = jnp.zeros((B, TINY.action_horizon, TINY.action_dim))
    maps = model.attention_maps(obs, x, jnp.ones(B))
    n = TINY.prefix_len + TINY.suffix_len
    assert len(maps) == TINY.paligemma.depth and maps[0].shape == (B, TINY.paligemma.num_heads, n, n)
    # valid prefix queries (the image tokens) put no probability on suffix keys
    images = TINY.vision.num_patches
    assert float(jnp.max(maps[0][:, :, :images, TINY.prefix_len :])) == 0.0
    np.testing.assert_allclose(jnp.sum(maps[-1], -1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(image_size=24), r"images\['base_0_rgb'\] must have shape \(2, 32, 32, 3\), got \(2, 24, 24, 3\)"),
        (dict(cameras=()), r"missing \['base_0_rgb'\]"),
        (dict(cameras=("base_0_rgb", "wrist")), r"extra \['wrist'\]"),
        (dict(state_dim=5), r"state has 5 dims, more than action_dim=4"),
        (dict(prompt_len=9), r"tokenized_prompt has 9 tokens, more than max_token_len=8"),
    ],
)
def test_bad_observations_raise_clear_errors(model, kwargs, words):
    obs = make_obs(**kwargs)
    with pytest.raises(ValueError, match=words):
        model.embed_prefix(obs)


def test_bad_actions_raise_clear_errors(model):
    obs = make_obs()
    with pytest.raises(ValueError, match=r"actions have 5 dims, more than action_dim=4"):
        model.compute_loss(jax.random.key(0), obs, jnp.zeros((B, TINY.action_horizon, 5)))
    with pytest.raises(ValueError, match=r"action_horizon=16"):
        model.compute_loss(jax.random.key(0), obs, jnp.zeros((B, 15, 2)))
    bad = np.zeros((B, TINY.action_horizon, 2), np.float32)
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \[1, 3, 0\]\)"):
        model.compute_loss(jax.random.key(0), obs, bad)
    with pytest.raises(ValueError, match="noise must have shape"):
        model.sample_actions(jax.random.key(0), obs, noise=jnp.zeros((B, 3, 4)))


def test_pi05_cached_sampling_equals_uncached():
    cfg = TINY.replace(pi05=True)
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    # adaRMS starts at zero (branches switched off); perturb it so the check means something
    for norm in (model.PaliGemma["llm"].experts[1].pre_attention_norm, model.PaliGemma["llm"].experts[1].pre_ffw_norm):
        norm.Dense_0.kernel[...] = 0.1 * jax.random.normal(jax.random.key(7), norm.Dense_0.kernel.shape)
    obs = make_obs()
    noise = jax.random.normal(jax.random.key(1), (B, cfg.action_horizon, cfg.action_dim))
    suffix, _, ar = model.embed_suffix(obs, noise, jnp.ones(B))
    assert suffix.shape[1] == cfg.action_horizon and ar.tolist() == [True] + [False] * (cfg.action_horizon - 1)
    np.testing.assert_allclose(sample(model, obs, noise, True), sample(model, obs, noise, False), atol=1e-5)
