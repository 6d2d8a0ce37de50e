"""Closed-loop evaluation on the toy task: receding horizon, all episodes batched.

Every replan, the policy sees every episode at once (one batched call, static shapes, one compile),
predicts a chunk of H actions and the env executes the first ``execute`` of them; finished episodes
just freeze. With H = 16, ``execute = 8`` and 100 steps that is at most 13 policy calls.

Metrics (fractions): success, crash, wrong (another square), timeout; ``coin_flip_success`` over the
episodes where the scripted expert itself would flip a coin; ``aligned_success`` over the aligned
scenes (start, disc and goal on one vertical line: exact ties). Every rate ``r`` comes with
``r_ci95``, its 95 % Wilson score interval (:func:`wilson_interval`), and the count it is over.

Axis letters: n episodes, h action horizon, t time steps, k xy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np
from jaxtyping import Float, Int

from pi0lite.toy import env as toy, expert as toy_expert

EVAL_SEED = 1_000_003  # scenes never seen in training (the data seeds are small ints)

PolicyFn = Callable[[dict, jax.Array], np.ndarray]  # (obs dict of batched arrays, key) -> [n, h, 2]


@dataclass(frozen=True, kw_only=True)
class Rollouts:
    scenes: toy.Scenes
    outcome: Int[np.ndarray, " n"]  # toy.SUCCESS / CRASH / WRONG / TIMEOUT
    paths: Float[np.ndarray, "n t k"]  # positions; frozen after the episode ended
    steps: Int[np.ndarray, " n"]  # steps taken
    coin_flip: np.ndarray  # the expert would flip a coin in this scene


def policy_fn(policy) -> PolicyFn:
    """Adapt a :class:`pi0lite.toy.policy.Policy` to the rollout loop."""
    return lambda obs, key: policy.infer(obs["image"], obs["state"], obs["instruction"], key)


def rollout(fn: PolicyFn, scenes: toy.Scenes, key: jax.Array, *, execute: int = 8, image_size: int = 32,
            task: str = "default") -> Rollouts:
    """Run every scene to its end: predict a chunk, execute ``execute`` actions, replan.

    ``task`` (:data:`pi0lite.toy.expert.TASKS`) decides whose coin flips ``coin_flip`` reports: the
    expert that made the policy's training data (the environment is the same for every task)."""
    env = toy.BatchedToyEnv(image_size)
    obs = env.reset(scenes)
    paths = [env.pos.copy()]
    replan = 0
    while not env.done.all() and env.t.max() < toy.MAX_STEPS:
        chunk = np.asarray(fn(obs, jax.random.fold_in(key, replan)))
        if chunk.ndim != 3 or chunk.shape[0] != len(scenes) or chunk.shape[1] < execute:
            raise ValueError(f"policy returned {chunk.shape}, expected [{len(scenes)}, >= {execute}, 2]")
        for j in range(execute):
            env.step(chunk[:, j, :2])
            paths.append(env.pos.copy())
            if env.done.all():
                break
        obs = env.observe()
        replan += 1
    coin = toy_expert.plan(scenes, np.random.default_rng(0), task).coin_flip
    return Rollouts(scenes=scenes, outcome=env.outcome.copy(), paths=np.stack(paths, 1), steps=env.t.copy(), coin_flip=coin)


Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a rate of ``k`` successes in ``n`` trials (95 % by default).

    ``(p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = k/n``; unlike ``p ± z·se``
    it stays inside [0, 1] and is not empty at k = 0 or k = n. ``n = 0`` gives ``(nan, nan)``.
    """
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(out: dict, name: str, hits: np.ndarray) -> None:
    k, n = int(np.sum(hits)), int(np.size(hits))
    out[name] = k / n if n else float("nan")
    out[f"{name}_ci95"] = [round(x, 4) for x in wilson_interval(k, n)]


def summarize(r: Rollouts) -> dict:
    """Fractions of each outcome and the coin-flip success rate, each with its 95 % Wilson interval."""
    out: dict = {}
    for code, name in [(toy.SUCCESS, "success"), (toy.CRASH, "crash"), (toy.WRONG, "wrong"), (toy.TIMEOUT, "timeout")]:
        _rate(out, name, r.outcome == code)
    coin = r.coin_flip
    _rate(out, "coin_flip_success", r.outcome[coin] == toy.SUCCESS)
    out["coin_flip_episodes"], out["episodes"] = int(coin.sum()), len(r.outcome)
    return out


def eval_scenes(num_episodes: int = 1000, num_aligned: int = 300, *, seed: int = EVAL_SEED):
    """The fixed evaluation scenes: canonical ones and aligned ones (same for every policy)."""
    rng = np.random.default_rng(seed)
    return toy.sample_scenes(rng, num_episodes), toy.sample_scenes(rng, num_aligned, layout="aligned")


def evaluate(fn: PolicyFn, *, num_episodes: int = 1000, num_aligned: int = 300, seed: int = EVAL_SEED,
             execute: int = 8, image_size: int = 32, key: jax.Array | None = None,
             task: str = "default") -> tuple[dict, Rollouts, Rollouts]:
    """Metrics on ``num_episodes`` canonical scenes plus ``aligned_success`` on the aligned ones.

    Both sets run in one batch (one compile of the policy); returns (metrics, canonical, aligned).
    ``task`` names the expert whose coin-flip episodes ``coin_flip_success`` counts (see :func:`rollout`).
    """
    key = jax.random.key(seed) if key is None else key
    canonical, aligned = eval_scenes(num_episodes, num_aligned, seed=seed)
    both = rollout(fn, toy.concat_scenes([canonical, aligned]), key, execute=execute, image_size=image_size,
                   task=task)
    main, tied = _split(both, num_episodes)
    metrics = summarize(main)
    if num_aligned:
        s = summarize(tied)
        for name in ("success", "crash"):
            metrics[f"aligned_{name}"], metrics[f"aligned_{name}_ci95"] = s[name], s[f"{name}_ci95"]
        metrics["aligned_episodes"] = num_aligned
    return metrics, main, tied


def _split(r: Rollouts, n: int) -> tuple[Rollouts, Rollouts]:
    def part(sl):
        return Rollouts(scenes=r.scenes[sl], outcome=r.outcome[sl], paths=r.paths[sl], steps=r.steps[sl],
                        coin_flip=r.coin_flip[sl])

    return part(slice(0, n)), part(slice(n, None))


def expert_fn(scenes: toy.Scenes, horizon: int = 16, execute: int = 8) -> PolicyFn:
    """The scripted expert replayed open-loop as a 'policy' (for tests; use the same ``execute``)."""
    plan = toy_expert.plan(scenes, np.random.default_rng(0))
    actions = np.concatenate([plan.actions, np.zeros((len(scenes), toy.MAX_STEPS + horizon, 2))], 1)
    calls = {"t": 0}

    def fn(obs, key):
        t = calls["t"]
        calls["t"] += execute
        return actions[:, t : t + horizon]

    return fn
