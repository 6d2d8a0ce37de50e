"""Closed-loop evaluation under inference delay: the world keeps moving while the next chunk is computed.

With delay ``d`` and execution horizon ``s`` (:func:`pi0lite.rtc.execution_schedule`): chunk ``m`` is
computed from the observation of step ``m·s`` and, for ``m ≥ 1``, reaches the robot at step
``m·s + d``; until then the previous chunk's actions keep running. Four ways to switch:

* ``naive``: execute the new chunk from its index ``d`` (its first ``d`` actions are stale);
* ``ensemble``: ACT's temporal ensembling: each step averages the actions that every arrived chunk
  covering the step predicts for it, weights ``exp(−k·i)`` with ``i = 0`` the oldest chunk;
* ``rtc``: inference-time RTC (:func:`pi0lite.rtc.guided_sample_actions`) towards the previous chunk,
  then executed as ``naive``;
* ``rtc_train``: a policy trained with simulated delays (:func:`pi0lite.rtc.compute_loss_delayed`)
  samples with its first ``d`` actions fixed to the previous chunk's
  (:func:`pi0lite.rtc.sample_actions_with_prefix`), then executed as ``naive``.

Chunk 0 is computed before the episode starts (no delay, no previous chunk). Metrics
(:func:`summarize_delayed`): success, crash, the jerk at chunk boundaries (third difference of the
position, ``|Δ³p| / DT³`` in arena units / s³, the larger of the two windows that contain the first
action of the new chunk), and the side-switch rate (episodes whose path is on both sides of the
disc while level with it).

Axis letters: n episodes, h action horizon, t time steps, k xy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Float, Int

from pi0lite import rtc
from pi0lite.toy import env as toy, expert as toy_expert

METHODS = ("naive", "ensemble", "rtc", "rtc_train")
ENSEMBLE_K = 0.01  # ACT's default: nearly uniform, the oldest chunk weighted slightly more
SIDE_MARGIN = 0.05  # "level with the disc": |y − disc_y| < radius + agent radius + this

#: (obs dict, key, prev_chunk raw [n, h, 2] shifted to the new window or None, delay) -> raw chunk [n, h, 2]
ChunkFn = Callable[[dict, jax.Array, "np.ndarray | None", int], np.ndarray]


def chunk_fn(policy, method: str, *, exec_horizon: int = 8, max_guidance: float = 5.0,
             schedule: str = "exp") -> ChunkFn:
    """The chunk source of ``method`` for a flow :class:`pi0lite.toy.policy.Policy` (raw actions in/out).

    ``rtc`` / ``rtc_train`` normalise the previous chunk with the policy's action stats and call the
    package's samplers in one jitted function per method (the delay is a traced argument).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if policy.mode != "flow":
        raise ValueError(f"delayed execution needs a flow policy, got mode {policy.mode!r}")
    graphdef, state = nnx.split(policy.model)
    stats = policy.norm["actions"]
    steps = policy.num_steps

    def guided(st, obs, prev, key, delay):
        model = nnx.merge(graphdef, st)
        if method == "rtc":
            return rtc.guided_sample_actions(model, key, obs, prev, delay=delay, exec_horizon=exec_horizon,
                                             num_steps=steps, max_guidance=max_guidance, schedule=schedule)
        return rtc.sample_actions_with_prefix(model, key, obs, prev, delay=delay, num_steps=steps)

    run = jax.jit(guided)

    def fn(obs: dict, key: jax.Array, prev: np.ndarray | None, delay: int) -> np.ndarray:
        if prev is None or method in ("naive", "ensemble"):
            return policy.infer(obs["image"], obs["state"], obs["instruction"], key)
        o = policy.observation(obs["image"], obs["state"], obs["instruction"])
        prev_n = jnp.asarray(stats.normalize(np.asarray(prev, np.float32)), jnp.float32)
        out = np.asarray(run(state, o, prev_n, key, jnp.int32(delay)))
        return stats.unnormalize(out)[..., : stats.dim]

    return fn


@dataclass(frozen=True, kw_only=True)
class DelayedRollouts:
    scenes: toy.Scenes
    outcome: Int[np.ndarray, " n"]
    paths: Float[np.ndarray, "n t k"]  # positions p_0 … p_T (frozen after the episode ended)
    steps: Int[np.ndarray, " n"]
    coin_flip: np.ndarray
    boundaries: Int[np.ndarray, " m"]  # steps at which a new chunk's first action is executed


def ensemble_weights(num: int, k: float = ENSEMBLE_K) -> Float[np.ndarray, " c"]:
    """ACT's weights for ``num`` chunks covering one step, oldest first: ``exp(−k·i)``, normalised."""
    w = np.exp(-k * np.arange(num))
    return w / w.sum()


def rollout_delayed(fn: ChunkFn, scenes: toy.Scenes, key: jax.Array, *, method: str, delay: int,
                    exec_horizon: int = 8, horizon: int = 16, image_size: int = 32,
                    task: str = "default") -> DelayedRollouts:
    """Run every scene to its end with delayed chunk switching (all episodes batched).

    ``task`` (:data:`pi0lite.toy.expert.TASKS`) only decides which expert's coin flips are reported
    as ``coin_flip``; the environment is the same for every task.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    s, d = exec_horizon, delay
    chunk_of, index_of = rtc.execution_schedule(toy.MAX_STEPS, delay=d, exec_horizon=s, horizon=horizon)
    env = toy.BatchedToyEnv(image_size)
    obs = env.reset(scenes)
    chunks = [np.asarray(fn(obs, jax.random.fold_in(key, 0), None, d))]
    if chunks[0].shape[:2] != (len(scenes), horizon):
        raise ValueError(f"chunk function returned {chunks[0].shape}, expected [{len(scenes)}, {horizon}, 2]")
    paths = [env.pos.copy()]
    for t in range(toy.MAX_STEPS):
        if env.done.all():
            break
        if t > 0 and t % s == 0:  # a new request with the observation of step t (arrives at t + d)
            m = t // s
            prev = np.asarray(rtc.shift_chunk(chunks[m - 1], s)) if method in ("rtc", "rtc_train") else None
            chunks.append(np.asarray(fn(env.observe(), jax.random.fold_in(key, m), prev, d)))
        if method == "ensemble":
            live = [m for m in range(len(chunks)) if (m == 0 or m * s + d <= t) and t - m * s < horizon]
            w = ensemble_weights(len(live))
            action = sum(wi * chunks[m][:, t - m * s] for wi, m in zip(w, live))
        else:
            action = chunks[chunk_of[t]][:, index_of[t]]
        env.step(action)
        paths.append(env.pos.copy())
    coin = toy_expert.plan(scenes, np.random.default_rng(0), task).coin_flip
    boundaries = np.arange(1, len(chunks)) * s + d
    return DelayedRollouts(scenes=scenes, outcome=env.outcome.copy(), paths=np.stack(paths, 1), steps=env.t.copy(),
                           coin_flip=coin, boundaries=boundaries[boundaries < toy.MAX_STEPS])


def boundary_jerk(paths: Float[np.ndarray, "n t k"], steps: Int[np.ndarray, " n"],
                  boundaries: Int[np.ndarray, " m"]) -> Float[np.ndarray, " j"]:
    """``max(|Δ³p|)/DT³`` over the two windows containing step ``b``'s action, for every boundary ``b``
    of every episode still running through step ``b + 1``."""
    j3 = paths[:, 3:] - 3 * paths[:, 2:-1] + 3 * paths[:, 1:-2] - paths[:, :-3]  # j3[:, i]: actions i..i+2
    norm = np.linalg.norm(j3, axis=-1) / toy.DT**3
    out = []
    for b in boundaries:
        if b < 2 or b - 1 >= norm.shape[1]:  # no full window before / after the episodes ended
            continue
        ok = steps >= b + 2  # actions b and b + 1 were executed
        out.append(np.maximum(norm[ok, b - 2], norm[ok, b - 1]))
    return np.concatenate(out) if out else np.zeros(0)


def side_switches(scenes: toy.Scenes, paths: Float[np.ndarray, "n t k"]) -> np.ndarray:
    """Per episode: was the agent on both sides of the disc (left and right) while level with it?"""
    dx = paths[..., 0] - scenes.disc[:, None, 0]
    level = np.abs(paths[..., 1] - scenes.disc[:, None, 1]) < (scenes.disc_radius + toy.AGENT_RADIUS + SIDE_MARGIN)[:, None]
    left = (level & (dx < -0.01)).any(1)
    right = (level & (dx > 0.01)).any(1)
    return left & right


def summarize_delayed(r: DelayedRollouts) -> dict:
    """success, crash, jerk_mean, side_switch_rate, episodes (the ``rtc`` section's fields) + extras."""
    jerk = boundary_jerk(r.paths, r.steps, r.boundaries)
    switches = side_switches(r.scenes, r.paths)
    return {
        "success": float(np.mean(r.outcome == toy.SUCCESS)),
        "crash": float(np.mean(r.outcome == toy.CRASH)),
        "jerk_mean": float(jerk.mean()) if jerk.size else float("nan"),
        "side_switch_rate": float(switches.mean()),
        "episodes": int(len(r.outcome)),
        "jerk_max": float(jerk.max()) if jerk.size else float("nan"),
        "coin_flip_success": float(np.mean(r.outcome[r.coin_flip] == toy.SUCCESS)) if r.coin_flip.any() else float("nan"),
        "boundaries": int(jerk.size),
    }
