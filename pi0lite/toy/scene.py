"""What is in a toy scene: the arena's constants, the instruction text and :class:`Scenes`.

Shared by :mod:`pi0lite.toy.env` (dynamics), :mod:`pi0lite.toy.render` (images) and
:mod:`pi0lite.toy.expert`, so that none of them needs another. See :mod:`pi0lite.toy.env` for
the task. Axis letters: n scenes, c colours (3), k xy (2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

DT = 0.1  # seconds per step (10 Hz)
V_MAX = 0.5  # max speed per axis, arena units / s
AGENT_RADIUS = 0.03
SQUARE_HALF = 0.05
MAX_STEPS = 100
COLOURS = ("red", "green", "blue")
OUTCOMES = ("running", "success", "crash", "wrong", "timeout")
RUNNING, SUCCESS, CRASH, WRONG, TIMEOUT = range(5)


def instruction(goal: int) -> str:
    """The instruction text for goal colour id ``goal``."""
    return f"go to the {COLOURS[goal]} square"


@dataclass(frozen=True, kw_only=True)
class Scenes:
    """A batch of static scenes; ``squares[i, c]`` is the centre of the square of colour ``c``."""

    squares: Float[np.ndarray, "n c k"]
    disc: Float[np.ndarray, "n k"]  # disc centre
    disc_radius: Float[np.ndarray, " n"]
    start: Float[np.ndarray, "n k"]  # agent start position
    goal: Int[np.ndarray, " n"]  # colour id of the named square

    def __len__(self) -> int:
        return len(self.goal)

    def __getitem__(self, idx) -> "Scenes":
        """Index or slice every field (keeps the batch axis for an int index)."""
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Scenes(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

    @property
    def goal_xy(self) -> Float[np.ndarray, "n k"]:
        return self.squares[np.arange(len(self)), self.goal]

    @property
    def instructions(self) -> list[str]:
        return [instruction(int(g)) for g in self.goal]


def sample_scenes(rng: np.random.Generator, n: int, *, layout: str = "canonical") -> Scenes:
    """Draw ``n`` scenes. ``layout`` is ``"canonical"`` or ``"aligned"`` (see module docstring)."""
    if layout not in ("canonical", "aligned"):
        raise ValueError(f"layout must be 'canonical' or 'aligned', got {layout!r}")
    slot_x = np.array([0.2, 0.5, 0.8]) + rng.uniform(-0.04, 0.04, (n, 3))  # [n, 3] left→right
    slot_y = 0.85 + rng.uniform(-0.03, 0.03, (n, 3))
    order = np.argsort(rng.random((n, 3)), axis=1)  # order[i, slot] = colour in that slot
    disc = np.stack([0.5 + rng.uniform(-0.03, 0.03, n), 0.5 + rng.uniform(-0.03, 0.03, n)], -1)
    disc_radius = rng.uniform(0.11, 0.14, n)
    start = np.stack([0.5 + rng.uniform(-0.05, 0.05, n), 0.1 + rng.uniform(-0.03, 0.03, n)], -1)
    goal = rng.integers(0, 3, n)
    if layout == "aligned":
        slot_x[:, 1] = disc[:, 0] = start[:, 0] = 0.5
        goal = order[:, 1].copy()  # the middle square is the goal
    squares = np.zeros((n, 3, 2))
    rows = np.arange(n)[:, None]
    squares[rows, order] = np.stack([slot_x, slot_y], -1)
    return Scenes(squares=squares, disc=disc, disc_radius=disc_radius, start=start, goal=goal)


def concat_scenes(parts: list[Scenes]) -> Scenes:
    fields = [f.name for f in dataclasses.fields(Scenes)]
    return Scenes(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})
