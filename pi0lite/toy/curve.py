"""Success during training: evaluate the policy every N steps, and ``steps_to_80``.

:class:`Curve` is an ``on_checkpoint`` callback for :func:`pi0lite.toy.train.train`: at every
multiple of ``every`` steps it runs the closed-loop evaluation on ``episodes`` fixed canonical
scenes (the same ones at every step: :func:`pi0lite.toy.evaluate.evaluate`'s fixed seed and key)
and appends ``{step, success, crash, wrong, timeout}`` to a JSON file, written atomically. A
resumed run keeps the points already measured. One :class:`~pi0lite.toy.policy.Policy` is
compiled once and refreshed with the current parameters at every point.
"""

from __future__ import annotations

import json
import pathlib
import time

from pi0lite.toy.evaluate import evaluate, policy_fn
from pi0lite.toy.files import atomic_write_text

RATES = ("success", "crash", "wrong", "timeout")


def steps_to(points: list[dict], threshold: float = 0.8) -> int | None:
    """The first step whose success is ≥ ``threshold`` (None if never)."""
    hits = [p["step"] for p in sorted(points, key=lambda p: p["step"]) if p["success"] >= threshold]
    return hits[0] if hits else None


def load_curve(path) -> list[dict]:
    path = pathlib.Path(path)
    return json.loads(path.read_text())["points"] if path.exists() else []


class Curve:
    """``curve(step, trainable)``: evaluate at multiples of ``every`` and record to ``path``."""

    def __init__(self, path, make_policy, *, every: int = 500, episodes: int = 100, image_size: int = 32,
                 execute: int = 8):
        self.path, self.make_policy = pathlib.Path(path), make_policy
        self.every, self.episodes, self.image_size, self.execute = every, episodes, image_size, execute
        self.points = load_curve(self.path)
        self.policy = None
        self.seconds = 0.0  # wall time spent evaluating (not training)

    def __call__(self, step: int, trainable) -> None:
        if step % self.every or any(p["step"] == step for p in self.points):
            return
        t0 = time.perf_counter()
        if self.policy is None:
            self.policy = self.make_policy(trainable.pi0)
        else:
            self.policy.refresh(trainable.pi0)
        metrics, _, _ = evaluate(policy_fn(self.policy), num_episodes=self.episodes, num_aligned=0,
                                 image_size=self.image_size, execute=self.execute)
        self.points.append({"step": step, **{k: metrics[k] for k in RATES}})
        self.points.sort(key=lambda p: p["step"])
        self.save()
        self.seconds += time.perf_counter() - t0

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"every": self.every, "episodes": self.episodes,
                                                 "points": self.points, "steps_to_80": steps_to(self.points)},
                                                indent=1))


#: The shipped four-run comparison of issue 10 (pi0, pi0_noaux, pi05_ki, pi05_noki; ``results.json`` shape).
SHIPPED_COMPARISON = "toy_results_ki.json"


def shipped_comparison() -> dict:
    """The shipped KI comparison: ``{"policies": {name: metrics with "curve" and "steps_to_80"}, ...}``."""
    from pi0lite.toy.policy import ASSETS

    return json.loads((ASSETS / SHIPPED_COMPARISON).read_text())
