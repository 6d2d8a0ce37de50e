"""Checks for notebook 11 (real-time chunking).

Axis letters: b batch, a action steps (horizon), j action dims, m chunks, t control steps.

Exercises: 11.1 ``prefix_weights(delay, exec_horizon, horizon, schedule)`` (the soft inpainting
weights); 11.2 ``guided_euler_step(velocity_fn, x_t, time, dt, prev_chunk, weights, max_guidance)``
(one Euler step of inference-time RTC, openpi's time convention: t = 1 noise); 11.3
``delayed_actions(chunks, delay, exec_horizon)`` (the actions a robot executes when each chunk
arrives ``delay`` steps after its request). Each case is compared with :mod:`pi0lite.rtc`; the known
mistakes (off-by-one ends of the ramp, a flipped guidance sign, the paper's time convention,
executing a late chunk from index 0) are recomputed here to pick the hint.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pi0lite import flow, rtc
from pi0lite.course.checks._cases import Case, random_normal, run_cases

__all__ = ["check_prefix_weights", "check_guided_euler_step", "check_delayed_actions"]


# --- 11.1 the prefix weights ---------------------------------------------------------------------


def _ramp(delay, exec_horizon, horizon, schedule, first_one, zero_at):
    """Weights 1 up to index ``first_one``, a ramp reaching 0 at index ``zero_at``, 0 after."""
    i = np.arange(horizon, dtype=np.float64)
    w = np.clip((zero_at - i) / max(zero_at - first_one, 1), 0.0, 1.0)
    if schedule == "exp":
        w = w * np.expm1(w) / (np.e - 1.0)
    return np.where(i >= horizon - exec_horizon, 0.0, w).astype(np.float32)


def _weight_mistakes(delay, exec_horizon, horizon, schedule):
    end = horizon - exec_horizon
    out = {
        f"index delay = {delay} is the first step the new chunk decides itself: its weight is already below 1. "
        f"Ramp from 1 at index delay − 1 down to 0 at index H − s, i.e. W_i = (H − s − i) / (H − s − delay + 1).":
            _ramp(delay, exec_horizon, horizon, schedule, delay, end),
        f"the ramp must reach 0 exactly at index H − s = {end} (the previous chunk has no action there) and not "
        f"one step earlier: W_i = (H − s − i) / (H − s − delay + 1).":
            _ramp(delay, exec_horizon, horizon, schedule, delay - 1, end - 1),
        f"index H − s = {end} must get weight 0 (the previous chunk ends at index H − s − 1 of the new window); "
        f"your ramp reaches 0 one step late.":
            np.where(np.arange(horizon) < end + 1,
                     _ramp(delay, exec_horizon - 1, horizon, schedule, delay - 1, end + 1), 0.0).astype(np.float32),
    }
    if schedule == "exp":
        lin = _ramp(delay, exec_horizon, horizon, "linear", delay - 1, end)
        out["the exp schedule maps each linear ramp value w to w·(e^w − 1)/(e − 1) (note the factor w)."] = \
            (np.expm1(lin) / (np.e - 1.0)).astype(np.float32)
        out["that is the linear schedule; for 'exp' map each ramp value w to w·(e^w − 1)/(e − 1)."] = lin
    return out


_WEIGHT_CASES = [  # (delay, exec_horizon, horizon, schedule)
    (4, 8, 16, "linear"), (4, 8, 16, "exp"), (2, 4, 10, "linear"), (1, 5, 12, "exp"), (0, 8, 16, "linear"),
    (3, 12, 16, "exp"),
]


def check_prefix_weights(prefix_weights: Callable) -> None:
    """``prefix_weights(delay, exec_horizon, horizon, schedule) -> W [horizon]``."""
    cases = [
        Case(name=f"delay={d}, exec_horizon={s}, horizon={h}, schedule={sched!r}", args=(d, s, h, sched),
             expected=np.asarray(rtc.prefix_weights(d, s, h, sched)),
             mistakes=lambda d=d, s=s, h=h, sched=sched: _weight_mistakes(d, s, h, sched))
        for d, s, h, sched in _WEIGHT_CASES
    ]
    run_cases("prefix_weights", prefix_weights, cases,
              generic_hint="W_i = 1 for i < delay, (H − s − i) / (H − s − delay + 1) for delay ≤ i < H − s "
                           "(then the exp map for 'exp'), 0 for i ≥ H − s.")


# --- 11.2 one guided Euler step ----------------------------------------------------------------


def _toy_velocity(seed: int, width: int):
    """A small nonlinear velocity field ``v(x, t)`` (its Jacobian is not the identity)."""
    m = jnp.asarray(random_normal(seed, (width, width), 0.6))
    b = jnp.asarray(random_normal(seed + 1, (width,), 0.3))

    def velocity(x, t):
        return jnp.tanh(x @ m + b) * (1.0 + t) + 0.5 * x

    return velocity


def _step_variant(velocity_fn, x, t, dt, prev, weights, max_guidance, *, sign=-1.0, paper=False, vjp=True,
                  weighted=True):
    """One guided step, or one of the known mistakes (flags)."""

    def estimate(y):
        v = velocity_fn(y, t)
        return (y + (1.0 - t) * v if paper else y - t * v), v

    x_hat, pullback, v = jax.vjp(estimate, x, has_aux=True)
    w = jnp.asarray(weights)[None, :, None] if weighted else 1.0
    error = w * (prev - x_hat)
    g = pullback(error)[0] if vjp else error
    return flow.euler_step(x, v + sign * rtc.guidance_weight(t, max_guidance) * g, dt)


def _step_mistakes(args):
    velocity_fn, x, t, dt, prev, weights, beta = args
    return {
        "the guidance enters openpi's velocity with a minus sign: v − c·g (the paper adds it because its v "
        "points the other way, v_paper = −v). With + the step pushes the estimate away from prev_chunk.":
            _step_variant(*args, sign=1.0),
        "that is the paper's one-step estimate A + (1 − τ)·v. In pi0lite t = 1 is noise and Euler runs down "
        "to t = 0, so the data end is reached by a step of −t: Â = x_t − t·v(x_t, t).":
            _step_variant(*args, paper=True),
        "the paper's formula with both conventions mixed: Â = x_t + (1 − t)·v and v + c·g.":
            _step_variant(*args, paper=True, sign=1.0),
        "g must be pulled back through the estimate: g = (∂Â/∂x_t)ᵀ e, one jax.vjp of x ↦ x − t·v(x, t) "
        "applied to the weighted error e (not e itself).":
            _step_variant(*args, vjp=False),
        "multiply the error by the prefix weights first: e = W ⊙ (prev_chunk − Â) (W broadcast over the "
        "action dims).":
            _step_variant(*args, weighted=False),
    }


def check_guided_euler_step(guided_euler_step: Callable) -> None:
    """``guided_euler_step(velocity_fn, x_t [b,a,j], time, dt, prev_chunk [b,a,j], weights [a], max_guidance)``."""
    cases = []
    for k, (t, beta, delay) in enumerate([(0.6, 5.0, 2), (0.3, 5.0, 3), (1.0, 5.0, 2), (0.8, 1.5, 1)]):
        x = jnp.asarray(random_normal(40 + k, (2, 6, 3)))
        prev = jnp.asarray(random_normal(60 + k, (2, 6, 3)))
        weights = rtc.prefix_weights(delay, 2, 6, "exp")
        args = (_toy_velocity(80 + k, 3), x, jnp.float32(t), jnp.float32(-0.2), prev, weights, beta)
        cases.append(Case(name=f"t={t}, max_guidance={beta}, delay={delay}", args=args,
                          expected=np.asarray(rtc.guided_euler_step(*args[:6], max_guidance=beta)),
                          mistakes=lambda args=args: _step_mistakes(args), atol=1e-4, rtol=1e-4))
    run_cases("guided_euler_step", guided_euler_step, cases,
              generic_hint="Â = x − t·v(x, t); e = W ⊙ (prev_chunk − Â); g = vjp of Â at x applied to e; "
                           "c = rtc.guidance_weight(t, max_guidance); return x + dt·(v − c·g).")


# --- 11.3 the delayed execution loop -------------------------------------------------------------


def _executed(chunks, chunk_of, index_of):
    return np.stack([chunks[m, i] for m, i in zip(chunk_of, index_of)])


def _loop_mistakes(chunks, delay, s):
    n = len(chunks)
    t = np.arange(n * s)
    late = np.maximum(0, (t - delay) // s)
    on_time = t // s
    early = np.maximum(0, (t - delay + 1) // s)
    return {
        f"a chunk that arrives {delay} steps late must be executed from its index delay = {delay}: its index 0 "
        f"is the action of the step whose observation it was computed from (already gone).":
            _executed(chunks, late, np.where(late > 0, t - late * s - delay, t)),
        f"the new chunk cannot be used at the step it was requested: it arrives delay = {delay} steps later "
        f"(chunk m from step m·s + delay); until then the previous chunk keeps running.":
            _executed(chunks, on_time, t - on_time * s),
        "off by one: chunk m ≥ 1 starts at step m·s + delay exactly (not one step earlier).":
            _executed(chunks, early, t - early * s),
        "during the wait the previous chunk continues where it is (index t − (m−1)·s), it does not restart.":
            _executed(chunks, late, np.where(late > 0, t - late * s, t % s)),
    }


def check_delayed_actions(delayed_actions: Callable) -> None:
    """``delayed_actions(chunks [m, a, j], delay, exec_horizon) -> executed actions [m·s, j]``.

    The chunks are labelled ``100·m + i`` so a wrong answer shows which chunk and index it executed.
    """
    cases = []
    for n, h, delay, s in [(4, 16, 3, 8), (5, 8, 2, 4), (3, 16, 0, 8), (6, 10, 4, 5), (4, 6, 1, 2)]:
        m, i = np.meshgrid(np.arange(n), np.arange(h), indexing="ij")
        chunks = np.stack([100.0 * m + i, -(100.0 * m + i)], axis=-1).astype(np.float32)  # [m, a, 2]
        chunk_of, index_of = rtc.execution_schedule(n * s, delay=delay, exec_horizon=s, horizon=h)
        cases.append(Case(name=f"{n} chunks, H={h}, delay={delay}, exec_horizon={s}", args=(chunks, delay, s),
                          expected=_executed(chunks, chunk_of, index_of),
                          mistakes=lambda c=chunks, d=delay, s=s: _loop_mistakes(c, d, s)))
    run_cases("delayed_actions", delayed_actions, cases,
              generic_hint="chunks are labelled 100·m + i (chunk m, index i). At step t: chunk 0 until step "
                           "s + delay − 1, then chunk m = (t − delay) // s at index t − m·s.")
