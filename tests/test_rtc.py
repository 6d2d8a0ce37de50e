"""Real-time chunking (pi0lite.rtc): prefix weights, guided sampling, per-token time, training-time RTC.

Oracles: hand-computed weights and schedules, a linear velocity field whose VJP is written by hand,
plain ``sample_actions`` / ``compute_loss`` (when RTC must reduce to them), and per-token results
compared with the shared-time pass of the token's own time.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite import rtc
from pi0lite.config import TINY
from pi0lite.pi0 import Observation, Pi0

B, H, J = 2, TINY.action_horizon, TINY.action_dim


def _tiny05():
    import dataclasses

    return dataclasses.replace(TINY, pi05=True)


def _randomise(model, seed=0, scale=0.05):
    """Fresh pi0.5 has zero adaRMS kernels (per-token time would be invisible): perturb every weight."""
    state = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    new = [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, new))
    return model


@pytest.fixture(scope="module", params=["pi0", "pi05"])
def model(request):
    if request.param == "pi0":
        return Pi0(TINY, rngs=nnx.Rngs(0))
    return _randomise(Pi0(_tiny05(), rngs=nnx.Rngs(0)))


def make_obs(seed=0):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(3, TINY.vocab_size, (B, 5))
    prompt[1, 3:] = 0
    return Observation.from_numpy(
        images={"base_0_rgb": rng.uniform(-1, 1, (B, 32, 32, 3)).astype(np.float32)},
        state=rng.normal(size=(B, 4)).astype(np.float32),
        tokenized_prompt=prompt, tokenized_prompt_mask=prompt != 0,
    )


def _noise(seed=1):
    return jax.random.normal(jax.random.key(seed), (B, H, J))


# --- prefix weights ---------------------------------------------------------------------------


def test_prefix_weights_linear_and_exp_match_hand_values():
    # delay 2, s = 8, H = 16: frozen 0..1, ramp over 2..7 (H − s = 8), zero from 8 on
    ramp = np.array([1, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7] + [0] * 8)
    np.testing.assert_allclose(rtc.prefix_weights(2, 8, 16, "linear"), ramp, atol=1e-6)
    exp = ramp * (np.exp(ramp) - 1) / (math.e - 1)
    np.testing.assert_allclose(rtc.prefix_weights(2, 8, 16, "exp"), exp, atol=1e-6)
    # off-by-one guards: W[delay − 1] = 1 and W[delay] < 1; W[H − s − 1] > 0 and W[H − s] = 0
    w = np.asarray(rtc.prefix_weights(3, 5, 12, "linear"))
    assert w[2] == 1.0 and w[3] < 1.0 and w[6] > 0 and w[7] == 0.0
    np.testing.assert_allclose(w[3:7], [4 / 5, 3 / 5, 2 / 5, 1 / 5], atol=1e-6)


def test_prefix_weights_edge_cases_and_errors():
    np.testing.assert_array_equal(rtc.prefix_weights(0, 16, 16), np.zeros(16))
    # delay past H − s is clipped: all of the overlap frozen
    np.testing.assert_array_equal(rtc.prefix_weights(6, 12, 16, "linear"), [1, 1, 1, 1] + [0] * 12)
    # traced delay gives the same weights
    jitted = jax.jit(lambda d: rtc.prefix_weights(d, 8, 16, "exp"))
    np.testing.assert_allclose(jitted(jnp.int32(3)), rtc.prefix_weights(3, 8, 16, "exp"), atol=1e-7)
    with pytest.raises(ValueError, match="schedule"):
        rtc.prefix_weights(1, 8, 16, "cosine")
    with pytest.raises(ValueError, match="exec_horizon"):
        rtc.prefix_weights(1, 0, 16)
    with pytest.raises(ValueError, match="delay"):
        rtc.prefix_weights(-1, 8, 16)


def test_guidance_weight_hand_values():
    assert float(rtc.guidance_weight(0.5, 5.0)) == pytest.approx(2.0)  # (0.25 + 0.25) / 0.25
    assert float(rtc.guidance_weight(0.2, 100.0)) == pytest.approx((0.04 + 0.64) / 0.16)
    assert float(rtc.guidance_weight(0.9, 5.0)) == 5.0  # 9.11 clipped
    assert float(rtc.guidance_weight(1.0, 5.0)) == 5.0  # pure noise: infinite, clipped


# --- one guided step against a hand-written VJP ---------------------------------------------------


def test_guided_euler_step_matches_hand_vjp_of_linear_field():
    """v(x, t) = x M + t·u: Â = x − t·v, ∂Â/∂x = I − t·M (acting on rows), so g = e − t·e Mᵀ."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(J, J)).astype(np.float32) * 0.3
    u = rng.normal(size=(B, H, J)).astype(np.float32)
    x = rng.normal(size=(B, H, J)).astype(np.float32)
    y = rng.normal(size=(B, H, J)).astype(np.float32)
    w = np.asarray(rtc.prefix_weights(3, 8, H, "exp"))
    t, dt, beta = 0.7, -0.1, 5.0
    velocity = lambda xx, tt: xx @ m + tt * u
    v = x @ m + t * u
    x_hat = x - t * v
    e = w[None, :, None] * (y - x_hat)
    g = e - t * e @ m.T
    c = min(beta, (t**2 + (1 - t) ** 2) / (t * (1 - t)))
    expected = x + dt * (v - c * g)
    got = rtc.guided_euler_step(velocity, jnp.asarray(x), t, dt, jnp.asarray(y), jnp.asarray(w), max_guidance=beta)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the guided step moves the one-step estimate towards y on the weighted steps
    new_hat = np.asarray(got) - (t + dt) * (np.asarray(got) @ m + (t + dt) * u)
    before = np.abs(w[None, :, None] * (y - x_hat)).sum()
    after = np.abs(w[None, :, None] * (y - new_hat)).sum()
    assert after < before


# --- guided sampling on pi0 and pi0.5 -------------------------------------------------------------


@nnx.jit(static_argnames=("delay", "exec_horizon", "max_guidance", "use_cache", "num_steps"))
def _guided(model, obs, prev, noise, delay, exec_horizon, max_guidance=5.0, use_cache=True, num_steps=10):
    return rtc.guided_sample_actions(model, jax.random.key(0), obs, prev, delay=delay, exec_horizon=exec_horizon,
                                     max_guidance=max_guidance, noise=noise, use_cache=use_cache, num_steps=num_steps)


@nnx.jit
def _plain(model, obs, noise):
    return model.sample_actions(jax.random.key(0), obs, noise=noise)


def test_zero_weights_equal_sample_actions(model):
    obs, noise = make_obs(), _noise()
    prev = jax.random.normal(jax.random.key(5), (B, H, J)) * 3
    np.testing.assert_allclose(_guided(model, obs, prev, noise, 0, H), _plain(model, obs, noise), atol=1e-5)


def test_strong_guidance_freezes_prefix(model):
    obs, noise = make_obs(), _noise()
    prev = jax.random.normal(jax.random.key(5), (B, H, J))
    plain = np.asarray(_plain(model, obs, noise))
    out = np.asarray(_guided(model, obs, prev, noise, 6, 8, max_guidance=20.0, num_steps=20))
    gap_plain = np.abs(plain[:, :6] - np.asarray(prev)[:, :6]).max()
    gap = np.abs(out[:, :6] - np.asarray(prev)[:, :6]).max()
    assert gap_plain > 0.5
    assert gap < 0.1, (gap, gap_plain)  # stated tolerance: 0.1 (unit-variance prev_chunk, 20 steps, β = 20)
    # the free tail (weights 0) is not pinned to prev
    assert np.abs(out[:, 8:] - np.asarray(prev)[:, 8:]).max() > 0.5


def test_cached_and_uncached_guided_sampling_agree(model):
    obs, noise = make_obs(), _noise()
    prev = jax.random.normal(jax.random.key(5), (B, H, J))
    cached = _guided(model, obs, prev, noise, 3, 8, use_cache=True)
    uncached = _guided(model, obs, prev, noise, 3, 8, use_cache=False)
    np.testing.assert_allclose(cached, uncached, atol=1e-4)


def test_guided_sampling_traced_delay_and_narrow_prev():
    model = Pi0(TINY, rngs=nnx.Rngs(0))
    obs, noise = make_obs(), _noise()
    prev = jax.random.normal(jax.random.key(5), (B, H, 2))  # 2 real dims, zero-padded to 4

    @nnx.jit
    def traced(model, d):
        return rtc.guided_sample_actions(model, jax.random.key(0), obs, prev, delay=d, exec_horizon=8, noise=noise)

    np.testing.assert_allclose(traced(model, jnp.int32(2)),
                               _guided(model, obs, jnp.pad(prev, ((0, 0), (0, 0), (0, 2))), noise, 2, 8), atol=1e-5)
    with pytest.raises(ValueError, match="prev_chunk"):
        rtc.guided_sample_actions(model, jax.random.key(0), obs, prev[:, :4], delay=1, exec_horizon=8)


# --- per-token time in the action expert ----------------------------------------------------------


@nnx.jit
def _forward(model, obs, x, t):
    return model.forward(obs, x, t)[0]


def test_shared_time_as_per_token_time_gives_the_same_velocity(model):
    obs, x = make_obs(), _noise(2)
    t = jnp.array([0.3, 0.8])
    v1 = _forward(model, obs, x, t)
    v2 = _forward(model, obs, x, jnp.broadcast_to(t[:, None], (B, H)))
    np.testing.assert_allclose(v1, v2, atol=1e-6)


def test_per_token_time_conditions_each_token_with_its_own_time(model):
    """Token i of the per-token pass is embedded / normed exactly as in a shared-time pass at t_i."""
    obs, x = make_obs(), _noise(2)
    times = jnp.linspace(0.05, 0.95, H)[None].repeat(B, 0)  # [b, a]
    if model.config.pi05:
        cond = model.adarms_cond(times)  # [b, a, e]
        for i in (0, 7, 15):
            np.testing.assert_allclose(cond[:, i], model.adarms_cond(times[:, i]), atol=1e-6)
        from pi0lite.norms import ada_rms_norm

        rng = np.random.default_rng(0)
        xs = jnp.asarray(rng.normal(size=(B, H, 8)), jnp.float32)
        kern = jnp.asarray(rng.normal(size=(cond.shape[-1], 24)), jnp.float32)
        bias = jnp.asarray(rng.normal(size=(24,)), jnp.float32)
        y, gate = ada_rms_norm(xs, cond, kern, bias)
        for i in (0, 9):
            yi, gi = ada_rms_norm(xs[:, i : i + 1], cond[:, i], kern, bias)
            np.testing.assert_allclose(y[:, i : i + 1], yi, atol=1e-5)
            np.testing.assert_allclose(gate[:, i : i + 1], gi, atol=1e-5)
    else:
        tokens, _, _ = model.embed_suffix(obs, x, times)
        for i in (0, 7, 15):
            shared, _, _ = model.embed_suffix(obs, x, times[:, i])
            np.testing.assert_allclose(tokens[:, 1 + i], shared[:, 1 + i], atol=1e-6)  # 1 + i: after the state
    # and the time really matters per token
    v_a = _forward(model, obs, x, times)
    v_b = _forward(model, obs, x, times.at[:, 3].set(0.5))
    assert np.abs(np.asarray(v_a - v_b)).max() > 1e-4


# --- training-time RTC ------------------------------------------------------------------------


def test_delayed_time_and_delay_distribution():
    np.testing.assert_array_equal(rtc.delayed_time(jnp.array([0.5, 0.75]), jnp.array([0, 2]), 4),
                                  [[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.75, 0.75]])
    p = rtc.delay_probs(4)
    np.testing.assert_allclose(p, np.exp(-np.arange(5) / 4) / np.exp(-np.arange(5) / 4).sum())
    d = np.asarray(rtc.sample_delay(jax.random.key(0), 20000, 4))
    assert d.min() == 0 and d.max() == 4
    np.testing.assert_allclose(np.bincount(d, minlength=5) / d.size, p, atol=0.015)


def test_compute_loss_delayed(model):
    obs = make_obs()
    rng = np.random.default_rng(3)
    actions = jnp.asarray(rng.normal(size=(B, H, J)), jnp.float32)
    noise, time = _noise(4), jnp.array([0.4, 0.9])
    zero = jnp.zeros(B, jnp.int32)
    loss0, mask0 = rtc.compute_loss_delayed(model, jax.random.key(0), obs, actions, max_delay=4, delay=zero,
                                            noise=noise, time=time)
    plain = model.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time)
    np.testing.assert_allclose(loss0, plain, rtol=1e-5, atol=1e-6)
    assert float(mask0.sum()) == B * H
    delay = jnp.array([3, 1])
    loss, mask = rtc.compute_loss_delayed(model, jax.random.key(0), obs, actions, max_delay=4, delay=delay,
                                          noise=noise, time=time)
    np.testing.assert_array_equal(mask[0], [0, 0, 0] + [1] * (H - 3))
    np.testing.assert_array_equal(mask[1], [0] + [1] * (H - 1))
    assert float(jnp.abs(loss * (1 - mask)).max()) == 0.0
    # committed tokens are clean: their noise does not reach the loss
    noise2 = noise.at[0, :3].set(100.0).at[1, :1].set(-100.0)
    loss2, _ = rtc.compute_loss_delayed(model, jax.random.key(0), obs, actions, max_delay=4, delay=delay,
                                        noise=noise2, time=time)
    np.testing.assert_allclose(loss2, loss, rtol=1e-5, atol=1e-6)


def test_sample_actions_with_prefix(model):
    obs, noise = make_obs(), _noise()
    prev = jax.random.normal(jax.random.key(5), (B, H, J))
    run = nnx.jit(lambda m, d, n, c: rtc.sample_actions_with_prefix(m, jax.random.key(0), obs, prev, delay=d,
                                                                     noise=n, use_cache=c), static_argnums=3)
    np.testing.assert_allclose(run(model, 0, noise, True), _plain(model, obs, noise), atol=1e-5)
    out = np.asarray(run(model, jnp.array([4, 2]), noise, True))
    np.testing.assert_array_equal(out[0, :4], np.asarray(prev)[0, :4])
    np.testing.assert_array_equal(out[1, :2], np.asarray(prev)[1, :2])
    assert np.abs(out[0, 4:] - np.asarray(prev)[0, 4:]).max() > 0.1
    # the noise of the committed steps is never used; cached = uncached
    out2 = np.asarray(run(model, jnp.array([4, 2]), noise.at[0, :4].set(50.0), False))
    np.testing.assert_allclose(out2, out, atol=1e-4)


# --- the delayed execution loop ----------------------------------------------------------------


def test_execution_schedule_hand_values():
    chunk, index = rtc.execution_schedule(12, delay=2, exec_horizon=4, horizon=8)
    np.testing.assert_array_equal(chunk, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 2, 3])
    chunk, index = rtc.execution_schedule(9, delay=0, exec_horizon=4, horizon=8)
    np.testing.assert_array_equal(chunk, [0, 0, 0, 0, 1, 1, 1, 1, 2])
    np.testing.assert_array_equal(index, [0, 1, 2, 3, 0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match="delay"):
        rtc.execution_schedule(10, delay=5, exec_horizon=4, horizon=8)


def test_shift_chunk():
    chunk = jnp.arange(8, dtype=jnp.float32).reshape(1, 8, 1)
    np.testing.assert_array_equal(rtc.shift_chunk(chunk, 3)[0, :, 0], [3, 4, 5, 6, 7, 7, 7, 7])
