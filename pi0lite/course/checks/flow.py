"""Checks for flow matching (notebook 05) and the time embedding (notebook 01).

Axis letters: b batch, h action horizon, d action dim, w embedding width.

Exercises: 5.1 ``interpolate(noise, actions, time)``; 5.2 ``target_velocity(noise, actions)``;
5.3 ``euler_sample(velocity_fn, noise, num_steps)``; 1.2 ``posemb_sincos(time, width)``.
Convention (openpi's): t = 1 noise, t = 0 data, ``x_t = t·noise + (1 − t)·actions``,
``u = noise − actions``, Euler from t = 1 to 0. Euler is also checked against closed forms
(constant, time-linear and linear fields) so it does not only agree with the package.
"""

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from pi0lite import flow
from pi0lite.course.checks._cases import Case, random_normal, run_cases

__all__ = ["check_flow_interpolate", "check_target_velocity", "check_euler_sample", "check_posemb_sincos"]

_SWAPPED = ("that is the paper's convention (τ = 0 noise). pi0lite follows openpi: t = 1 is noise, "
            "so x_t = t·noise + (1 − t)·actions.")


def _pair(seed: int, shape=(3, 4, 2)):
    return random_normal(seed, shape), random_normal(seed + 100, shape)


_BROADCAST = "time is per example ([b]): reshape it to [b, 1, 1] so it broadcasts over h and d."


def check_flow_interpolate(interpolate: Callable) -> None:
    """``interpolate(noise [b,h,d], actions [b,h,d], time [b]) -> x_t [b,h,d]``."""
    cases = []
    # first case: d == b, so a time of shape [b] broadcasts silently over the *last* axis (d)
    # instead of over the batch; that mistake gives a wrong value, not an error, and gets its hint
    noise, actions = _pair(2, (3, 4, 3))
    time = np.array([0.1, 0.6, 0.95], np.float32)
    t = time[:, None, None]
    cases.append(Case(
        name="t = 0.1, 0.6, 0.95 with action dim = batch = 3",
        args=(jnp.asarray(noise), jnp.asarray(actions), jnp.asarray(time)),
        expected=t * noise + (1 - t) * actions,
        mistakes={_SWAPPED: t * actions + (1 - t) * noise, _BROADCAST: time * noise + (1 - time) * actions},
    ))
    noise, actions = _pair(0)
    for name, time in [("t = 1 is pure noise", np.ones(3)), ("t = 0 is the data", np.zeros(3)),
                       ("t = 0.25, 0.5, 0.9 per example", np.array([0.25, 0.5, 0.9])),
                       ("random t, bigger chunk", np.random.default_rng(1).random(3))]:
        if "bigger" in name:
            noise, actions = _pair(1, (3, 8, 5))
        time = time.astype(np.float32)
        t = time[:, None, None]
        cases.append(Case(
            name=name, args=(jnp.asarray(noise), jnp.asarray(actions), jnp.asarray(time)),
            expected=t * noise + (1 - t) * actions,
            mistakes={_SWAPPED: t * actions + (1 - t) * noise},
        ))
    run_cases("interpolate", interpolate, cases)


def check_target_velocity(target_velocity: Callable) -> None:
    """``target_velocity(noise, actions) -> u = d x_t / dt = noise − actions``."""
    cases = []
    for seed, shape in [(2, (2, 3, 2)), (3, (4, 1, 2)), (4, (1, 50, 32))]:
        noise, actions = _pair(seed, shape)
        cases.append(Case(
            name=f"shape {shape}", args=(jnp.asarray(noise), jnp.asarray(actions)),
            expected=noise - actions,
            mistakes={"sign flipped: x_t moves towards the noise as t grows, so d x_t/dt = noise − actions "
                      "(actions − noise is the paper's velocity).": actions - noise},
        ))
    run_cases("target_velocity", target_velocity, cases)


def _euler_variant(velocity_fn, noise, num_steps, *, forward=False, late_time=False, steps_off=0):
    """Euler with switchable mistakes (stepping 0 → 1, time taken after the step, wrong step count)."""
    x = np.asarray(noise, np.float64)
    n = num_steps + steps_off
    dt = 1.0 / num_steps if forward else -1.0 / num_steps
    for i in range(max(n, 0)):
        t = (0.0 if forward else 1.0) + (i + (1 if late_time else 0)) * dt
        x = x + dt * np.asarray(velocity_fn(x, np.full(x.shape[0], t)), np.float64)
    return x


def _fields():
    c = random_normal(7, (1, 3, 2))
    w = random_normal(8, (2, 2)) * 0.5
    return [
        ("constant field v = c (exact answer: noise − c)", lambda x, t: np.broadcast_to(c, x.shape)),
        ("time field v = t (exact: noise − (N+1)/(2N))", lambda x, t: np.ones(x.shape) * np.asarray(t)[:, None, None]),
        ("linear field v = x (exact: noise·(1 − 1/N)^N)", lambda x, t: np.asarray(x)),
        ("nonlinear field v = tanh(x W)·(1 + t)", lambda x, t: np.tanh(np.asarray(x) @ w) * (1 + np.asarray(t)[:, None, None])),
    ]


def _wrap(field):
    """Hand the student's code jax arrays and insist on time [b]."""
    def velocity_fn(x, time):
        time = np.asarray(time)
        if time.shape != (np.shape(x)[0],):
            raise ValueError(f"velocity_fn expects time of shape [b] = ({np.shape(x)[0]},), got {time.shape}")
        return jnp.asarray(field(np.asarray(x, np.float64), time.astype(np.float64)), jnp.float32)
    return velocity_fn


def check_euler_sample(euler_sample: Callable) -> None:
    """``euler_sample(velocity_fn, noise [b,h,d], num_steps) -> x_0``: Euler from t = 1 down to 0."""
    cases = []
    noise = random_normal(9, (2, 3, 2))
    for (name, field), steps in zip(_fields(), (4, 5, 10, 10)):
        expected = _euler_variant(field, noise, steps)
        mistakes = {
            "integrate from t = 1 (noise) down to t = 0 (data): dt = −1/num_steps, start with time = 1.":
                _euler_variant(field, noise, steps, forward=True),
            "evaluate v at the time *before* the step: times 1, 1 − 1/N, …, 1/N.":
                _euler_variant(field, noise, steps, late_time=True),
            "take exactly num_steps steps.": _euler_variant(field, noise, steps, steps_off=-1),
        }
        cases.append(Case(name=f"{name}, N = {steps}", args=(_wrap(field), jnp.asarray(noise), steps),
                          expected=expected, mistakes=mistakes, atol=1e-4, rtol=1e-4))
    run_cases("euler_sample", euler_sample, cases,
              generic_hint="x ← x + dt·v(x, t) with dt = −1/num_steps, then t ← t + dt.")


def _posemb_variant(time, width, *, interleave=False, cos_first=False, no_two_pi=False, reverse=False):
    time = np.asarray(time, np.float64)
    fraction = np.linspace(0.0, 1.0, width // 2)
    period = 4e-3 * (4.0 / 4e-3) ** (fraction[::-1] if reverse else fraction)
    angle = time[:, None] / period * (1.0 if no_two_pi else 2 * np.pi)
    sin, cos = np.sin(angle), np.cos(angle)
    if interleave:
        return np.stack([sin, cos], axis=-1).reshape(time.shape[0], width)
    return np.concatenate([cos, sin] if cos_first else [sin, cos], axis=-1)


def check_posemb_sincos(posemb_sincos: Callable) -> None:
    """``posemb_sincos(time [b], width) -> [b, width]``: all sines, then all cosines."""
    cases = []
    for name, time, width in [("t = 0", [0.0], 8), ("t = 0.5, 1", [0.5, 1.0], 16),
                              ("random times, width 64", np.random.default_rng(3).random(4), 64)]:
        time = np.asarray(time, np.float32)
        mistakes = {
            "all sines first, then all cosines (concatenate, don't interleave).": _posemb_variant(time, width, interleave=True),
            "sines first, then cosines.": _posemb_variant(time, width, cos_first=True),
            "the angle is t / period · 2π.": _posemb_variant(time, width, no_two_pi=True),
            "periods grow from min_period to max_period: min_period · (max/min)^fraction.": _posemb_variant(time, width, reverse=True),
        }
        cases.append(Case(name=name, args=(jnp.asarray(time), width),
                          expected=np.asarray(flow.posemb_sincos(jnp.asarray(time), width)),
                          mistakes=mistakes, atol=2e-3, rtol=0.0))
    run_cases("posemb_sincos", posemb_sincos, cases)
