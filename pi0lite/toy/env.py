"""The toy task: "go to the {red|green|blue} square" (numpy only).

A top-down arena [0, 1]², 10 Hz. An agent dot with state (x, y, vx, vy) moves with 2-D velocity
actions (clipped to ±``V_MAX``). Three coloured squares sit in a jittered top row in random colour
order, a grey disc obstacle sits in the middle. Only the instruction says which square is the goal,
so the policy must read it. An episode ends in **success** (the agent's centre is inside the named
square), **crash** (the agent touches the disc), **wrong** (inside another square) or **timeout**
(``MAX_STEPS`` steps).

Two layouts:

* ``"canonical"``: start near the bottom centre, disc in the middle, squares in a row on top.
  When the goal is behind the disc the scripted expert flips a coin (see ``toy_expert``).
* ``"aligned"``: start, disc and goal square all at x = 0.5, so both detours are *exactly*
  equally long; every episode is a coin flip. The two other squares keep their jitter.

Everything is batched over scenes (leading axis ``n``); :class:`ToyEnv` is the single-episode,
gymnasium-style wrapper and :class:`BatchedToyEnv` the vectorised one used by evaluation.

Axis letters: n scenes/episodes, c colours (3), s image side (pixels), k xy (2).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int

from pi0lite.toy.scene import (
    AGENT_RADIUS, COLOURS, CRASH, DT, MAX_STEPS, OUTCOMES, RUNNING, SQUARE_HALF, SUCCESS, TIMEOUT, V_MAX, WRONG, Scenes, concat_scenes, instruction, sample_scenes,
)

# The task's constants and scenes live in scene.py and are part of this module's interface.
__all__ = ["AGENT_RADIUS", "BatchedToyEnv", "COLOURS", "CRASH", "DT", "MAX_STEPS", "OUTCOMES", "RUNNING", "SQUARE_HALF", "SUCCESS", "Scenes", "TIMEOUT", "ToyEnv", "V_MAX", "WRONG", "classify", "concat_scenes", "instruction", "sample_scenes"]


def classify(scenes: Scenes, pos: Float[np.ndarray, "n k"]) -> Int[np.ndarray, " n"]:
    """Outcome code of each agent position (``RUNNING`` unless it ended there); no timeout here."""
    inside = np.all(np.abs(pos[:, None, :] - scenes.squares) < SQUARE_HALF, axis=-1)  # [n, c]
    in_goal = inside[np.arange(len(scenes)), scenes.goal]
    crashed = np.linalg.norm(pos - scenes.disc, axis=-1) < scenes.disc_radius + AGENT_RADIUS
    out = np.full(len(scenes), RUNNING)
    out[inside.any(-1)] = WRONG
    out[in_goal] = SUCCESS
    out[crashed] = CRASH
    return out


class BatchedToyEnv:
    """``n`` episodes stepped together. Finished episodes freeze; ``outcome`` keeps their result.

    ``reset(scenes)`` starts every episode; ``step(actions [n, 2])`` moves the running ones by
    ``clip(action)·DT`` and returns the outcome codes. ``state`` is (x, y, vx, vy) per episode.
    """

    def __init__(self, image_size: int = 32):
        self.image_size = image_size

    def reset(self, scenes: Scenes) -> dict:
        self.scenes = scenes
        n = len(scenes)
        self.pos = scenes.start.astype(np.float64).copy()
        self.vel = np.zeros((n, 2))
        self.t = np.zeros(n, int)
        self.outcome = np.full(n, RUNNING)
        return self.observe()

    @property
    def done(self) -> Bool[np.ndarray, " n"]:
        return self.outcome != RUNNING

    @property
    def state(self) -> Float[np.ndarray, "n 4"]:
        return np.concatenate([self.pos, self.vel], -1).astype(np.float32)

    def observe(self) -> dict:
        from pi0lite.toy.render import render

        return {
            "image": render(self.scenes, self.pos, self.image_size),
            "state": self.state,
            "instruction": self.scenes.instructions,
        }

    def step(self, actions: Float[np.ndarray, "n k"]) -> Int[np.ndarray, " n"]:
        actions = np.asarray(actions, np.float64)
        if actions.shape != self.pos.shape:
            raise ValueError(f"actions must have shape {self.pos.shape}, got {actions.shape}")
        run = ~self.done
        act = np.clip(actions, -V_MAX, V_MAX)
        self.vel[run] = act[run]
        self.pos[run] = np.clip(self.pos[run] + act[run] * DT, 0.0, 1.0)
        self.t[run] += 1
        new = classify(self.scenes, self.pos)
        self.outcome[run] = new[run]
        self.outcome[run & (self.outcome == RUNNING) & (self.t >= MAX_STEPS)] = TIMEOUT
        return self.outcome


class ToyEnv:
    """One episode, gymnasium-style: ``reset(seed=, options=) -> (obs, info)``,
    ``step(action) -> (obs, reward, terminated, truncated, info)``.

    ``obs`` is a dict with ``image`` (uint8 [s, s, 3]), ``state`` (f32 [4]) and ``instruction``;
    reward is 1 on success, else 0; ``terminated`` on success/crash/wrong, ``truncated`` on timeout.
    ``options={"layout": "aligned"}`` picks the aligned layout. (No gymnasium dependency: the
    conventions are followed, the spaces objects are not provided.)
    """

    def __init__(self, image_size: int = 32, layout: str = "canonical"):
        self.image_size, self.layout = image_size, layout
        self._env = BatchedToyEnv(image_size)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        layout = (options or {}).get("layout", self.layout)
        self.scenes = sample_scenes(np.random.default_rng(seed), 1, layout=layout)
        obs = self._env.reset(self.scenes)
        return _single(obs), {"goal": COLOURS[int(self.scenes.goal[0])]}

    def step(self, action):
        outcome = int(self._env.step(np.asarray(action, np.float64).reshape(1, 2))[0])
        obs = _single(self._env.observe())
        info = {"outcome": OUTCOMES[outcome]}
        return obs, float(outcome == SUCCESS), outcome in (SUCCESS, CRASH, WRONG), outcome == TIMEOUT, info


def _single(obs: dict) -> dict:
    return {"image": obs["image"][0], "state": obs["state"][0], "instruction": obs["instruction"][0]}
