"""Demonstrations from Meta-World's scripted experts, cached on disk as a versioned npz.

Every episode of task ``k`` and number ``e`` uses the variation seed ``train_seed(seed, k, e)`` (small
ints; the evaluation seeds start at 1,000,000, so no evaluation scene is ever trained on). At every
step the expert labels the frame with its action; the env executes that action plus N(0, ``noise``)
(DART-style: the data then also covers the states a slightly wrong policy reaches, while the labels
stay the expert's). After the first success ``extra_steps`` more steps are recorded (the policy
should see what "done" looks like), then the episode ends. Episodes that do not succeed within
``MAX_STEPS`` are dropped and counted.

The cache file name holds :data:`VERSION` and a digest of every setting, and is written atomically
(temporary file + rename), so a killed or concurrent collection never leaves a half-written cache.
Collection runs one worker process per core, with a tqdm bar over episodes.

Axis letters: n frames · y, x pixels · c colour · s state (4) · d action (4) · k xyz.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import multiprocessing
import os
import pathlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int, UInt8

from pi0lite.sim.metaworld import CAMERA, IMAGE_SIZE, MAX_STEPS, TASKS, check_task

VERSION = 1  # bump when the content of a cache file changes meaning
FIELDS = ("images", "state", "actions", "object_xyz", "episode", "task", "step")


@dataclass(frozen=True, kw_only=True)
class SimDataset:
    """Frames of successful expert episodes, in episode order (leading axis n)."""

    images: UInt8[np.ndarray, "n y x c"]  # upright camera image
    state: Float[np.ndarray, "n s"]  # hand xyz + gripper before the action
    actions: Float[np.ndarray, "n d"]  # the expert's label (not the noisy executed action)
    object_xyz: Float[np.ndarray, "n k"]  # the task object's position (for the auxiliary loss only)
    episode: Int[np.ndarray, " n"]  # global episode id
    task: Int[np.ndarray, " n"]  # index into ``tasks``
    step: Int[np.ndarray, " n"]
    tasks: tuple[str, ...]
    meta: dict  # settings, failures per task, seconds

    def __len__(self) -> int:
        return len(self.episode)

    def chunk_index(self, horizon: int) -> Int[np.ndarray, "n h"]:
        """Frame indices of the chunk starting at every frame; past the episode end, its last frame repeats."""
        n = len(self)
        last = np.zeros(n, np.int64)  # index of the last frame of each frame's episode
        ends = np.flatnonzero(np.r_[self.episode[1:] != self.episode[:-1], True])
        starts = np.r_[0, ends[:-1] + 1]
        for s, e in zip(starts, ends):
            last[s : e + 1] = e
        idx = np.arange(n)[:, None] + np.arange(horizon)[None, :]
        return np.minimum(idx, last[:, None])

    def chunks(self, horizon: int) -> Float[np.ndarray, "n h d"]:
        return self.actions[self.chunk_index(horizon)]

    @property
    def instructions(self) -> list[str]:
        from pi0lite.sim.metaworld import instruction

        names = [instruction(t) for t in self.tasks]
        return [names[k] for k in self.task]


def train_seed(seed: int, task_index: int, episode: int) -> int:
    """Variation seed of training episode ``episode`` of task ``task_index`` (all < 1,000,000)."""
    return (seed * 50 + task_index) * 1000 + episode


def record_episode(env, variation_seed: int, rng: np.random.Generator, *, noise: float, extra_steps: int):
    """One expert episode through the adapter; returns a dict of arrays, or None if it failed."""
    obs, _ = env.reset(seed=variation_seed)
    rows = {"images": [], "state": [], "actions": [], "object_xyz": []}
    after = None
    for t in range(MAX_STEPS + extra_steps):
        label = env.expert_action()
        rows["images"].append(obs["image"])
        rows["state"].append(obs["state"])
        rows["actions"].append(label)
        rows["object_xyz"].append(env.object_position())
        executed = np.clip(label + rng.normal(0.0, noise, label.shape), -1.0, 1.0)
        obs, _, success, _, _ = env.step(executed)
        if after is None and success:
            after = 0
        elif after is not None:
            after += 1
        if after is not None and after >= extra_steps:
            break
        if after is None and t + 1 >= MAX_STEPS:
            return None
    return {k: np.stack(v) for k, v in rows.items()}


_ENVS: dict = {}  # one env per task per worker process


def _collect_job(task: str, task_index: int, episodes: list[int], seed: int, noise: float, extra_steps: int):
    from pi0lite.sim.metaworld import MetaWorldEnv

    if task not in _ENVS:
        first = not _ENVS
        _ENVS[task] = MetaWorldEnv(task)
        if first and multiprocessing.parent_process() is not None:
            # a worker: close its envs at exit. Registered after mujoco's own hook (eglTerminate,
            # registered at the first EGL context) so that it runs first (atexit is LIFO);
            # registered at worker start, every worker printed an EGL_NOT_INITIALIZED traceback.
            atexit.register(_close_envs)
    env = _ENVS[task]
    out = []
    for e in episodes:
        rng = np.random.default_rng([seed, task_index, e])
        out.append((e, record_episode(env, train_seed(seed, task_index, e), rng, noise=noise, extra_steps=extra_steps)))
    return task_index, out


def _close_envs() -> None:
    while _ENVS:
        _ENVS.popitem()[1].close()  # before interpreter teardown: no EGL tracebacks from __del__


def _worker_init():
    os.environ.setdefault("LP_NUM_THREADS", "1")  # llvmpipe: one render thread per worker process


def collect(tasks=TASKS, *, episodes: int = 50, seed: int = 0, noise: float = 0.1, extra_steps: int = 10,
            workers: int | None = None, progress: bool = True, job_size: int = 5) -> SimDataset:
    """Run the experts (``episodes`` per task) and return the successful episodes' frames."""
    import time

    from tqdm.auto import tqdm

    tasks = tuple(check_task(t) for t in tasks)
    workers = workers or min(len(os.sched_getaffinity(0)), len(tasks) * episodes)
    jobs = [(t, k, list(range(s, min(s + job_size, episodes)))) for k, t in enumerate(tasks)
            for s in range(0, episodes, job_size)]
    results: dict[tuple[int, int], dict | None] = {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(tasks) * episodes, desc="expert demos", unit="ep", disable=not progress, dynamic_ncols=True)
    if workers <= 1:
        for job in jobs:
            k, out = _collect_job(*job, seed, noise, extra_steps)
            results.update({(k, e): r for e, r in out})
            bar.update(len(out))
        _close_envs()
    else:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold JAX or EGL state
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_collect_job, *job, seed, noise, extra_steps) for job in jobs]
            for f in as_completed(futures):
                k, out = f.result()
                results.update({(k, e): r for e, r in out})
                bar.update(len(out))
    bar.close()
    parts, failures, ep_id = [], {t: 0 for t in tasks}, 0
    for k, t in enumerate(tasks):
        for e in range(episodes):
            r = results[(k, e)]
            if r is None:
                failures[t] += 1
                continue
            n = len(r["actions"])
            r.update(episode=np.full(n, ep_id, np.int32), task=np.full(n, k, np.int16), step=np.arange(n, dtype=np.int32))
            parts.append(r)
            ep_id += 1
    arrays = {f: np.concatenate([p[f] for p in parts]) for f in FIELDS}
    meta = dict(settings(tasks, episodes, seed, noise, extra_steps), failures=failures,
                kept_episodes=ep_id, collect_seconds=round(time.perf_counter() - t0, 1))
    return SimDataset(**arrays, tasks=tasks, meta=meta)


def settings(tasks, episodes, seed, noise, extra_steps) -> dict:
    return dict(version=VERSION, tasks=list(tasks), episodes=episodes, seed=seed, noise=noise, extra_steps=extra_steps,
                camera=CAMERA, image_size=IMAGE_SIZE, max_steps=MAX_STEPS)


def cache_path(cache_dir, tasks=TASKS, *, episodes=50, seed=0, noise=0.1, extra_steps=10) -> pathlib.Path:
    s = json.dumps(settings(tasks, episodes, seed, noise, extra_steps), sort_keys=True)
    digest = hashlib.sha1(s.encode()).hexdigest()[:10]
    return pathlib.Path(cache_dir) / f"metaworld_demos_v{VERSION}_{digest}.npz"


def save(ds: SimDataset, path) -> None:
    """Atomic write: a temporary file in the same folder, then rename."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **{f: getattr(ds, f) for f in FIELDS}, tasks=np.array(ds.tasks),
                        meta=np.array(json.dumps(ds.meta)))
    os.replace(tmp, path)


def load(path) -> SimDataset:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("version") != VERSION:
            raise ValueError(f"{path}: cache version {meta.get('version')}, this code reads version {VERSION}")
        return SimDataset(**{f: z[f] for f in FIELDS}, tasks=tuple(str(t) for t in z["tasks"]), meta=meta)


def load_or_collect(cache_dir, tasks=TASKS, *, episodes: int = 50, seed: int = 0, noise: float = 0.1,
                    extra_steps: int = 10, progress: bool = True, workers: int | None = None) -> SimDataset:
    """The cached dataset for these settings, collecting (and caching) it first if needed."""
    path = cache_path(cache_dir, tasks, episodes=episodes, seed=seed, noise=noise, extra_steps=extra_steps)
    if path.exists():
        return load(path)
    ds = collect(tasks, episodes=episodes, seed=seed, noise=noise, extra_steps=extra_steps, progress=progress,
                 workers=workers)
    save(ds, path)
    return ds
