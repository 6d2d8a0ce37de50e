"""The notebook-11 checks accept a correct answer and reject realistic wrong ones with a useful hint.

The answers here are written from the formulas (not by calling pi0lite.rtc), so the checks are
compared with an independent source.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite.course.checks import check_delayed_actions, check_guided_euler_step, check_prefix_weights


# --- 11.1 ---------------------------------------------------------------------------------------


def weights_by_hand(delay, exec_horizon, horizon, schedule, *, first_one=None, zero_at=None, exp_factor=True):
    end = horizon - exec_horizon
    first_one = delay - 1 if first_one is None else first_one
    zero_at = end if zero_at is None else zero_at
    out = []
    for i in range(horizon):
        if i < delay and i < zero_at:
            w = 1.0
        elif i >= zero_at or i >= end:
            w = 0.0
        else:
            w = (zero_at - i) / (zero_at - first_one)
            if schedule == "exp":
                w = (w if exp_factor else 1.0) * (np.exp(w) - 1.0) / (np.e - 1.0)
        out.append(w)
    return np.array(out, np.float32)


def test_prefix_weights_accepts_hand_written(capsys):
    check_prefix_weights(weights_by_hand)
    assert capsys.readouterr().out.startswith("✓ prefix_weights")


def test_prefix_weights_hand_values():
    # d = 4, s = 8, H = 16: the ramp 4/5, 3/5, 2/5, 1/5 between the committed and the free steps
    np.testing.assert_allclose(weights_by_hand(4, 8, 16, "linear")[3:9], [1, 0.8, 0.6, 0.4, 0.2, 0], atol=1e-7)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d, s, h, sched: weights_by_hand(d, s, h, sched, first_one=d), "index delay"),  # W_d = 1
        (lambda d, s, h, sched: weights_by_hand(d, s, h, sched, zero_at=h - s - 1, first_one=d - 1),
         "one step earlier"),  # zero one step early
        (lambda d, s, h, sched: weights_by_hand(d, s - 1, h, sched, zero_at=h - s + 1),
         "one step late"),  # W_{H−s} > 0
        (lambda d, s, h, sched: weights_by_hand(d, s, h, sched, exp_factor=False), "factor w"),
        (lambda d, s, h, sched: weights_by_hand(d, s, h, "linear"), "that is the linear schedule"),
        (lambda d, s, h, sched: (np.arange(h) < d).astype(np.float32), "W_i = 1 for i < delay"),  # hard mask
    ],
)
def test_prefix_weights_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_prefix_weights(wrong)


# --- 11.2 ---------------------------------------------------------------------------------------


def guided_step_by_hand(velocity_fn, x, t, dt, prev, weights, max_guidance, *, estimate="openpi", sign=-1.0,
                        use_vjp=True):
    def x_hat_of(y):
        v = velocity_fn(y, t)
        return (y - t * v) if estimate == "openpi" else (y + (1 - t) * v)

    v = velocity_fn(x, t)
    x_hat, pull = jax.vjp(x_hat_of, x)
    e = jnp.asarray(weights)[:, None] * (prev - x_hat)
    g = pull(e)[0] if use_vjp else e
    tau = 1.0 - t
    c = jnp.where(tau * (1 - tau) > 0, (1 - tau) / jnp.maximum(tau, 1e-12) * (tau**2 + (1 - tau) ** 2)
                  / jnp.maximum((1 - tau) ** 2, 1e-12), jnp.inf)  # the paper's (1−τ)/τ · 1/r²_τ
    c = jnp.minimum(c, max_guidance)
    return x + dt * (v + sign * c * g)


def test_guided_euler_step_accepts_hand_written(capsys):
    check_guided_euler_step(guided_step_by_hand)
    assert capsys.readouterr().out.startswith("✓ guided_euler_step")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda *a: guided_step_by_hand(*a, sign=1.0), "minus sign"),
        (lambda *a: guided_step_by_hand(*a, estimate="paper"), "paper's one-step estimate"),
        (lambda *a: guided_step_by_hand(*a, estimate="paper", sign=1.0), "both conventions"),
        (lambda *a: guided_step_by_hand(*a, use_vjp=False), "jax.vjp"),
        (lambda f, x, t, dt, prev, w, b: guided_step_by_hand(f, x, t, dt, prev, jnp.ones_like(w), b), "prefix weights"),
        (lambda f, x, t, dt, prev, w, b: x + dt * f(x, t), "guidance weight|Â = x − t·v"),  # no guidance at all
    ],
)
def test_guided_euler_step_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_guided_euler_step(wrong)


# --- 11.3 ---------------------------------------------------------------------------------------


def delayed_by_hand(chunks, delay, s, *, from_index=None, switch_offset=None):
    """Loop over control steps; ``from_index`` / ``switch_offset`` inject the mistakes."""
    out, current, start, queue = [], 0, 0, {}
    switch_offset = delay if switch_offset is None else switch_offset
    for t in range(len(chunks) * s):
        if t > 0 and t % s == 0:
            queue[t + switch_offset] = t // s  # requested now, arrives later
        if t in queue:
            current, start = queue.pop(t), t - (delay if from_index is None else from_index)
        out.append(chunks[current, t - start])
    return np.stack(out)


def test_delayed_actions_accepts_hand_written(capsys):
    check_delayed_actions(delayed_by_hand)
    assert capsys.readouterr().out.startswith("✓ delayed_actions")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c, d, s: delayed_by_hand(c, d, s, from_index=0), "from its index delay"),
        (lambda c, d, s: delayed_by_hand(c, d, s, switch_offset=0, from_index=0), "cannot be used at the step it was requested"),
        (lambda c, d, s: delayed_by_hand(c, d, s, switch_offset=max(d - 1, 0), from_index=max(d - 1, 0)),
         "off by one"),
        (lambda c, d, s: np.stack([c[t // s, t % s] for t in range(len(c) * s)]), "arrives delay"),
    ],
)
def test_delayed_actions_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_delayed_actions(wrong)
