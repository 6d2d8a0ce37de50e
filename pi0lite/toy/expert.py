"""The scripted expert of the toy task: around the disc on the shorter side, a coin flip on ties.

Path. If the straight segment start→goal clears the disc centre by ``radius + CLEARANCE``, go
straight. Otherwise pass through a *via point* beside the disc, ``radius + CLEARANCE`` away from its
centre along the normal of the start→goal line, on a quadratic Bézier through that point. If one
side's path is more than ``TIE_RATIO`` (5 %) shorter, take it; otherwise flip a coin. Those coin-flip
scenes are the multimodal ones: nearly the same observation, two correct action chunks.

Timing. A trapezoid speed profile with cosine ramps over 15 % of the duration at each end and a
peak speed drawn per episode in [0.12, 0.18] units/s. After arrival the actions are zeros.

Task variants (:class:`Task`, :data:`TASKS`): the environment is the same, the demonstrations
differ. ``"default"`` is the above. ``"fork"`` (the real-time chunking variant, issue 11) drives
``speed_scale`` = 1.75× faster (peak 0.21–0.315 units/s, still under ``V_MAX``) and decides late:
it goes straight along start→goal to a *fork point* ``F`` whose distance to the disc centre along
that line is ``radius + fork_gap`` (0.12), and only there swerves onto the Bézier from ``F``
through the same via point to the goal. The side is decided at ``F``, mid-episode and moving fast,
not at rest before the first chunk.

Axis letters: n scenes, t time steps, u curve samples, k xy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int

from pi0lite.toy.scene import DT, Scenes

CLEARANCE = 0.10  # via point distance beyond the disc radius (agent radius 0.03 + 0.07 margin)
TIE_RATIO = 0.95  # sides within 5 % of each other are a coin flip
RAMP = 0.15  # fraction of the duration spent accelerating (and again decelerating)
SPEED_RANGE = (0.12, 0.18)
CURVE_SAMPLES = 257


@dataclass(frozen=True, kw_only=True)
class Task:
    """How the expert drives: ``speed_scale`` × :data:`SPEED_RANGE`, and where it decides its side.

    ``fork_gap=None``: the detour curves from the start. A number: straight to the fork point
    ``radius + fork_gap`` before the disc centre (along start→goal), the detour from there.
    """

    name: str
    speed_scale: float = 1.0
    fork_gap: float | None = None

    def __post_init__(self):
        if not self.speed_scale > 0 or (self.fork_gap is not None and not self.fork_gap > 0):
            raise ValueError(f"Task {self.name!r}: speed_scale and fork_gap must be > 0, got "
                             f"{self.speed_scale}, {self.fork_gap}")


TASKS = {"default": Task(name="default"), "fork": Task(name="fork", speed_scale=1.75, fork_gap=0.12)}


def get_task(task: "str | Task") -> Task:
    """A :class:`Task` from its name in :data:`TASKS` (a ``Task`` is returned as it is)."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    return TASKS[task]


@dataclass(frozen=True, kw_only=True)
class ExpertPlan:
    """The expert's open-loop plan for each scene (the env is kinematic, so replaying it is exact)."""

    actions: Float[np.ndarray, "n t k"]  # velocities, zero after arrival
    num_steps: Int[np.ndarray, " n"]  # steps until arrival at the square centre
    side: Int[np.ndarray, " n"]  # +1 left of start→goal, −1 right, 0 straight
    coin_flip: Bool[np.ndarray, " n"]  # both detours within 5 %: the side was a coin flip
    path: Float[np.ndarray, "n u k"]  # the geometric path (for plots)


def bezier(p0, c, p2, u):
    """Quadratic Bézier ``(1−u)²·p0 + 2u(1−u)·c + u²·p2`` at parameters ``u`` [u] → [n, u, k]."""
    u = u[None, :, None]
    return (1 - u) ** 2 * p0[:, None] + 2 * u * (1 - u) * c[:, None] + u**2 * p2[:, None]


def fork_point(scenes: Scenes, fork_gap: float | None) -> Float[np.ndarray, "n k"]:
    """Where the expert decides its side: the start, or ``radius + fork_gap`` before the disc centre
    along start→goal (measured along that line; never behind the start)."""
    p0, p2 = scenes.start, scenes.goal_xy
    if fork_gap is None:
        return p0.copy()
    direction = (p2 - p0) / np.linalg.norm(p2 - p0, axis=-1, keepdims=True)
    ahead = np.sum((scenes.disc - p0) * direction, -1) - scenes.disc_radius - fork_gap  # [n]
    return p0 + np.maximum(ahead, 0.0)[:, None] * direction


def detour_paths(scenes: Scenes, task: "str | Task" = "default"
                 ) -> tuple[Float[np.ndarray, "n 3 u k"], Bool[np.ndarray, " n"]]:
    """Candidate paths [straight, left, right] per scene and whether the straight one is clear.

    With a fork (:class:`Task`) every candidate is the straight start→``F`` segment followed by the
    curve from ``F`` (``2·CURVE_SAMPLES − 1`` samples; ``CURVE_SAMPLES`` without a fork).
    """
    task = get_task(task)
    p0, p2, d = scenes.start, scenes.goal_xy, scenes.disc
    line = p2 - p0
    length = np.linalg.norm(line, axis=-1, keepdims=True)
    normal = np.stack([-line[:, 1], line[:, 0]], -1) / length  # left of the direction of travel
    # distance from the disc centre to the segment p0→p2
    s = np.clip(np.sum((d - p0) * line, -1, keepdims=True) / length**2, 0.0, 1.0)
    dist = np.linalg.norm(p0 + s * line - d, axis=-1)
    reach = (scenes.disc_radius + CLEARANCE)[:, None]
    u = np.linspace(0.0, 1.0, CURVE_SAMPLES)
    f = fork_point(scenes, task.fork_gap)
    paths = []
    for via in (0.5 * (f + p2), d + reach * normal, d - reach * normal):
        control = 2 * via - 0.5 * (f + p2)  # makes the curve pass through ``via`` at u = 1/2
        paths.append(bezier(f, control, p2, u))
    if task.fork_gap is not None:  # the straight segment p0→F first
        approach = bezier(p0, 0.5 * (p0 + f), f, u)
        paths = [np.concatenate([approach, path[:, 1:]], 1) for path in paths]
    return np.stack(paths, 1), dist >= reach[:, 0]


def arc_length(path: Float[np.ndarray, "n u k"]) -> Float[np.ndarray, "n u"]:
    seg = np.linalg.norm(np.diff(path, axis=1), axis=-1)
    return np.concatenate([np.zeros((len(path), 1)), np.cumsum(seg, 1)], 1)


def distance_travelled(t, duration, speed):
    """Distance covered at time ``t`` under the cosine-ramped trapezoid profile (vectorised)."""
    ramp = RAMP * duration
    total = speed * (duration - ramp)

    def up(tt):  # ∫ speed·(1 − cos(π τ/ramp))/2 dτ
        return 0.5 * speed * (tt - ramp / np.pi * np.sin(np.pi * tt / ramp))

    t = np.clip(t, 0.0, duration)
    mid = up(ramp) + speed * (t - ramp)
    return np.where(t < ramp, up(t), np.where(t > duration - ramp, total - up(duration - t), mid))


def plan(scenes: Scenes, rng: np.random.Generator, task: "str | Task" = "default") -> ExpertPlan:
    """The expert's plan for every scene; ``rng`` draws the speeds and the coin flips."""
    task = get_task(task)
    n = len(scenes)
    candidates, straight_ok = detour_paths(scenes, task)  # [n, 3, u, k]
    lengths = np.stack([arc_length(candidates[:, i])[:, -1] for i in range(3)], 1)  # [n, 3]
    left, right = lengths[:, 1], lengths[:, 2]
    coin_flip = ~straight_ok & (np.minimum(left, right) >= TIE_RATIO * np.maximum(left, right))
    coin = rng.random(n) < 0.5
    go_left = np.where(coin_flip, coin, left < right)
    side = np.where(straight_ok, 0, np.where(go_left, 1, -1))
    choice = np.where(side == 0, 0, np.where(side == 1, 1, 2))
    path = candidates[np.arange(n), choice]  # [n, u, k]
    speed = rng.uniform(*SPEED_RANGE, n) * task.speed_scale
    cum = arc_length(path)
    length = cum[:, -1]
    duration = length / (speed * (1 - RAMP))
    num_steps = np.ceil(duration / DT).astype(int)
    actions = np.zeros((n, num_steps.max(), 2))
    for i in range(n):
        t = np.arange(num_steps[i] + 1) * DT
        s = distance_travelled(t, duration[i], speed[i])
        pts = np.stack([np.interp(s, cum[i], path[i, :, k]) for k in range(2)], -1)
        actions[i, : num_steps[i]] = np.diff(pts, axis=0) / DT
    return ExpertPlan(actions=actions, num_steps=num_steps, side=side, coin_flip=coin_flip, path=path)

