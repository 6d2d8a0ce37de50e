"""Flow-matching checks accept the package reference and reject realistic wrong implementations."""

import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite import flow
from pi0lite.course import flow2d
from pi0lite.course.checks import check_euler_sample, check_flow_interpolate, check_posemb_sincos, check_target_velocity
from pi0lite.course.checks.flow import _euler_variant, _posemb_variant


def test_accept_references(capsys):
    check_flow_interpolate(flow.interpolate)
    check_target_velocity(flow.target_velocity)
    check_euler_sample(flow2d.euler_sample)
    check_posemb_sincos(flow.posemb_sincos)
    assert capsys.readouterr().out.count("✓") == 4


def test_euler_oracle_matches_closed_forms():
    noise = np.random.default_rng(0).standard_normal((2, 3, 2))
    c = np.full((1, 3, 2), 0.7)
    assert np.allclose(_euler_variant(lambda x, t: np.broadcast_to(c, x.shape), noise, 4), noise - c)
    time_field = lambda x, t: np.ones(x.shape) * t[:, None, None]
    assert np.allclose(_euler_variant(time_field, noise, 5), noise - 6 / 10)
    assert np.allclose(_euler_variant(lambda x, t: x, noise, 10), noise * 0.9**10)


def test_posemb_variant_matches_package():
    t = np.array([0.0, 0.3, 1.0], np.float32)
    assert np.allclose(_posemb_variant(t, 16), flow.posemb_sincos(jnp.asarray(t), 16), atol=1e-4)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, a, t: flow.interpolate(a, n, t), "paper's convention"),
        (lambda n, a, t: t * n + (1 - t) * a, "reshape it to \\[b, 1, 1\\]"),
        (lambda n, a, t: flow.interpolate(n, a, 1 - t), "first wrong value"),
    ],
)
def test_interpolate_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_flow_interpolate(wrong)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, a: a - n, "sign flipped"),
        (lambda n, a: n + a, "first wrong value"),
    ],
)
def test_target_velocity_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_target_velocity(wrong)


def _forward(v, noise, num_steps):
    x, dt = noise, 1.0 / num_steps
    for i in range(num_steps):
        x = x + dt * v(x, jnp.full((x.shape[0],), i * dt))
    return x


def _late_time(v, noise, num_steps):
    x, dt = noise, -1.0 / num_steps
    for i in range(num_steps):
        x = x + dt * v(x, jnp.full((x.shape[0],), 1.0 + (i + 1) * dt))
    return x


def _one_step_short(v, noise, num_steps):
    x, dt = noise, -1.0 / num_steps
    for i in range(num_steps - 1):
        x = x + dt * v(x, jnp.full((x.shape[0],), 1.0 + i * dt))
    return x


def _scalar_time(v, noise, num_steps):
    x, dt = noise, -1.0 / num_steps
    for i in range(num_steps):
        x = x + dt * v(x, 1.0 + i * dt)
    return x


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_forward, "from t = 1"),
        (_late_time, "before\\* the step"),
        (_one_step_short, "exactly num_steps"),
        (lambda v, n, s: flow2d.euler_sample(v, n, s - 1), "first wrong value"),
        (_scalar_time, "time of shape \\[b\\]"),
    ],
)
def test_euler_sample_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_euler_sample(wrong)


@pytest.mark.parametrize(
    "kwargs, hint",
    [
        ({"interleave": True}, "don't interleave"),
        ({"cos_first": True}, "sines first"),
        ({"no_two_pi": True}, "2π"),
        ({"reverse": True}, "periods grow"),
    ],
)
def test_posemb_rejects(kwargs, hint):
    with pytest.raises(AssertionError, match=hint):
        check_posemb_sincos(lambda t, w: _posemb_variant(t, w, **kwargs).astype(np.float32))
