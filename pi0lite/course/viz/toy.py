"""Pictures of the toy task: the arena, rollout paths, observations and loss curves.

All functions take arrays (or a :class:`pi0lite.toy.env.Scenes`), an optional ``ax``, and return
the Axes; they never touch global matplotlib state.

Axis letters: n episodes, t time steps, k xy, s image side.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, Rectangle

from pi0lite.toy import env as toy
from pi0lite.toy.render import DISC_RGB, SQUARE_RGB

__all__ = ["plot_arena", "plot_rollouts", "plot_observation", "plot_loss_curves", "animate_rollouts",
           "OUTCOME_COLORS"]

#: Path colour per outcome code (running, success, crash, wrong, timeout).
OUTCOME_COLORS = {toy.RUNNING: "#888888", toy.SUCCESS: "#2ca02c", toy.CRASH: "#d62728",
                  toy.WRONG: "#ff7f0e", toy.TIMEOUT: "#7f7f7f"}


def _axes(ax):
    return plt.subplots(figsize=(4, 4))[1] if ax is None else ax


def plot_arena(scenes: toy.Scenes, index: int = 0, *, ax=None, title: str | None = None):
    """The squares (goal outlined in white), the disc and the start of scene ``index``."""
    ax = _axes(ax)
    ax.set_facecolor((0.10, 0.10, 0.12))
    for c in range(3):
        x, y = scenes.squares[index, c]
        h = toy.SQUARE_HALF
        goal = c == scenes.goal[index]
        ax.add_patch(Rectangle((x - h, y - h), 2 * h, 2 * h, color=SQUARE_RGB[c], ec="white" if goal else "none",
                               lw=2.0 if goal else 0))
    ax.add_patch(Circle(tuple(scenes.disc[index]), scenes.disc_radius[index], color=DISC_RGB))
    ax.plot(*scenes.start[index], "o", color="white", ms=5)
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xticks=[], yticks=[])
    ax.set_title(title if title is not None else toy.instruction(int(scenes.goal[index])), fontsize=9)
    return ax


def plot_rollouts(scenes: toy.Scenes, paths: np.ndarray, outcomes: np.ndarray, *, index: int = 0, ax=None,
                  title: str | None = None, alpha: float = 0.6):
    """Paths ``[n, t, 2]`` over the arena of scene ``index``, coloured by outcome (green = success,
    red = crash, orange = wrong square, grey = timeout). Pass several rollouts of one scene to see
    the modes, or one per scene for an overview."""
    ax = plot_arena(scenes, index, ax=ax, title=title)
    for path, outcome in zip(np.asarray(paths), np.asarray(outcomes)):
        ax.plot(path[:, 0], path[:, 1], "-", color=OUTCOME_COLORS[int(outcome)], lw=1.2, alpha=alpha)
    return ax


def plot_observation(image: np.ndarray, *, ax=None, title: str | None = None):
    """One uint8 observation image (what the policy sees)."""
    ax = _axes(ax)
    ax.imshow(np.asarray(image), interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def plot_loss_curves(histories: dict[str, np.ndarray], *, ax=None, smooth: int = 50, column: int = 0,
                     title: str = "training loss"):
    """Loss per step for each named run (``history[:, column]``), moving-averaged, log scale."""
    ax = _axes(ax)
    for name, h in histories.items():
        y = np.asarray(h)[:, column] if np.ndim(h) == 2 else np.asarray(h)
        k = max(1, min(smooth, len(y)))
        ys = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(ys)) + k, ys, label=name)
    ax.set(yscale="log", xlabel="step", ylabel="loss", title=title)
    ax.legend(fontsize=8)
    return ax


def animate_rollouts(scenes: toy.Scenes, paths: np.ndarray, outcomes: np.ndarray, *, index: int = 0, ax=None,
                     interval: int = 80):
    """A ``FuncAnimation`` of the agents moving along ``paths`` (save it with a Pillow writer)."""
    from matplotlib.animation import FuncAnimation

    ax = plot_arena(scenes, index, ax=ax)
    paths = np.asarray(paths)
    lines = [ax.plot([], [], "-", color=OUTCOME_COLORS[int(o)], lw=1.2)[0] for o in outcomes]
    dots = [ax.plot([], [], "o", color="white", ms=3)[0] for _ in outcomes]

    def frame(t):
        for line, dot, path in zip(lines, dots, paths):
            line.set_data(path[: t + 1, 0], path[: t + 1, 1])
            dot.set_data(path[t : t + 1, 0], path[t : t + 1, 1])
        return lines + dots

    return FuncAnimation(ax.figure, frame, frames=paths.shape[1], interval=interval, blit=True)
