"""Reproducible closed-loop evaluation on Meta-World: fixed task variations and seeds.

Episode ``i`` of every task uses the variation seed ``EVAL_SEED + i`` (training uses seeds below
1,000,000, so evaluation scenes are never trained on) and the policy key ``fold_in(key(i), replan)``;
the same policy therefore always gets the same score. Episodes are capped at ``MAX_STEPS`` (150)
and succeed when Meta-World's ``info["success"]`` turns true.

One env per task; the ``i``-th episodes of all tasks run in lockstep, so every replan is one batched
policy call over the tasks: predict a chunk of H actions, execute the first ``execute``, replan.

Axis letters: b episodes run together (one per task), h action horizon, d action dim, t steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from pi0lite.sim.metaworld import MAX_STEPS, TASKS, MetaWorldEnv, check_task

EVAL_SEED = 1_000_000
#: (images [b, 64, 64, 3] uint8, state [b, 4], instructions, key) -> chunks [b, H, 4]
PolicyFn = Callable[[np.ndarray, np.ndarray, list, jax.Array], np.ndarray]


@dataclass
class EvalResult:
    tasks: tuple[str, ...]
    success: np.ndarray  # [tasks, episodes] bool
    steps: np.ndarray  # [tasks, episodes] steps taken (to success, or the cap)
    seconds: float = 0.0
    frames: dict = field(default_factory=dict)  # task -> list of frames of episode 0 (if asked)

    def summary(self) -> dict:
        """Per task: success rate, episodes and the 95 % Wilson interval; the mean over tasks with the
        interval of all episodes pooled (every task has the same number of episodes)."""
        rate, low, high = task_success(self.success)
        tasks = {t: {"success": float(rate[k]), "episodes": int(self.success.shape[1]),
                     "interval": [round(float(low[k]), 4), round(float(high[k]), 4)]} for k, t in enumerate(self.tasks)}
        _, pooled_low, pooled_high = task_success(self.success.reshape(1, -1))
        return {"tasks": tasks, "mean_success": float(np.mean(rate)),
                "mean_interval": [round(float(pooled_low[0]), 4), round(float(pooled_high[0]), 4)]}


def policy_fn(policy) -> PolicyFn:
    return lambda images, state, instructions, key: policy.infer(images, state, instructions, key)


def expert_fn(envs: list[MetaWorldEnv]) -> PolicyFn:
    """The scripted expert as a 'policy': a chunk of its current action repeated (execute 1 for closed loop)."""

    def fn(images, state, instructions, key):
        return np.stack([env.expert_action() for env in envs])[:, None, :]

    return fn


def evaluate(fn: PolicyFn | str, tasks=TASKS, *, episodes: int = 20, execute: int = 4, seed: int = EVAL_SEED,
             max_steps: int = MAX_STEPS, record: int = 0, progress: bool = True, envs: list | None = None) -> EvalResult:
    """Success of ``fn`` on ``episodes`` fixed variations of every task; ``fn="expert"`` runs the experts.

    ``record`` episodes of each task keep their frames (for GIFs), in ``result.frames[task]``.
    """
    import time

    tasks = tuple(check_task(t) for t in tasks)
    own = envs is None
    envs = envs or [MetaWorldEnv(t) for t in tasks]
    if fn == "expert":
        fn, execute = expert_fn(envs), 1
    success = np.zeros((len(tasks), episodes), bool)
    steps = np.full((len(tasks), episodes), max_steps, np.int32)
    frames: dict = {t: [] for t in tasks}
    t0 = time.perf_counter()
    bar = tqdm(total=episodes * len(tasks), desc="eval", unit="ep", disable=not progress, dynamic_ncols=True)
    try:
        for i in range(episodes):
            obs = [env.reset(seed=seed + i)[0] for env in envs]
            done = np.zeros(len(tasks), bool)
            keep = [[o["image"]] if i < record else None for o in obs]
            t, replan = 0, 0
            while not done.all() and t < max_steps:
                chunk = np.asarray(fn(np.stack([o["image"] for o in obs]), np.stack([o["state"] for o in obs]),
                                      [o["instruction"] for o in obs], jax.random.fold_in(jax.random.key(i), replan)))
                replan += 1
                for j in range(min(execute, chunk.shape[1])):
                    for k, env in enumerate(envs):
                        if done[k]:
                            continue
                        obs[k], _, ok, _, _ = env.step(chunk[k, j])
                        if keep[k] is not None:
                            keep[k].append(obs[k]["image"])
                        if ok:
                            done[k], success[k, i], steps[k, i] = True, True, t + 1
                    t += 1
                    if done.all() or t >= max_steps:
                        break
            for k, task in enumerate(tasks):
                if keep[k] is not None:
                    frames[task].append(np.stack(keep[k]))
            bar.update(len(tasks))
    finally:
        bar.close()
        if own:
            for env in envs:
                env.close()
    return EvalResult(tasks, success, steps, time.perf_counter() - t0, frames)


def wilson_interval(successes, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a success rate (95 % for z = 1.96); sensible at 0/n and n/n too."""
    successes, n = np.asarray(successes, np.float64), np.asarray(n, np.float64)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def task_success(success) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-task success rate and its 95 % Wilson interval from outcomes ``[tasks, episodes]`` (bool)."""
    success = np.asarray(success, bool)
    k, n = success.sum(-1), success.shape[-1]
    low, high = wilson_interval(k, n)
    return k / n, low, high
