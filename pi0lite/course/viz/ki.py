"""Pictures of knowledge insulation: where the gradients go, the three-block mask, success during training.

All functions take arrays / dicts, an optional ``ax``, and return the Axes; they never touch
global matplotlib state.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from pi0lite.course.viz.masks import plot_attn_mask

__all__ = ["plot_grad_norms", "plot_ki_mask", "plot_success_curves"]


def plot_grad_norms(norms: Mapping[str, Mapping[str, float]], *, ax=None, title: str | None = None, log: bool = True):
    """Grouped bars: one group per module (``grad_norms_by_module``'s keys), one bar per case.

    ``norms`` maps a case name (e.g. ``"flow loss, insulate=True"``) to ``{module: L2 norm}``. A
    norm of exactly 0 is drawn as an empty slot labelled "0" (on a log axis it has no bar).
    """
    if ax is None:
        ax = plt.subplots(figsize=(8, 3.4))[1]
    cases = list(norms)
    modules = list(next(iter(norms.values())))
    width = 0.8 / max(len(cases), 1)
    x = np.arange(len(modules))
    positive = [v for case in cases for v in norms[case].values() if v > 0]
    floor = min(positive) / 10 if positive else 1e-12
    for i, case in enumerate(cases):
        values = np.array([norms[case][m] for m in modules], float)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.where(values > 0, values, np.nan), width, label=case)
        for p, v in zip(pos, values):
            if v == 0:
                ax.text(p, floor, "0", ha="center", va="bottom", fontsize=9)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x, modules, fontsize=9)
    ax.set_ylabel("gradient L2 norm")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or "gradient norm per module", fontsize=10)
    return ax


def plot_ki_mask(mask, *, prefix: Sequence[tuple[str, int]], n_fast: int, n_actions: int, ax=None,
                 title: str | None = None):
    """The KI attention mask ``[t, t]`` (one example of :func:`pi0lite.ki.ki_attn_mask`) with its
    blocks named: the ``prefix`` segments (e.g. image, prompt), the FAST tokens, the action tokens."""
    segments = [*prefix, ("FAST", n_fast), ("actions", n_actions)]
    return plot_attn_mask(np.asarray(mask), segments=segments, ax=ax,
                          title=title or "KI: actions see the prefix, never the FAST tokens")


def plot_success_curves(curves: Mapping[str, Sequence[Mapping]], *, threshold: float = 0.8, ax=None,
                        title: str | None = None):
    """Closed-loop success vs training step, one line per policy (points ``{"step", "success"}``,
    as in ``curve.json`` / ``results.json``'s ``curve.points``); the ``threshold`` as a dashed line."""
    if ax is None:
        ax = plt.subplots(figsize=(6, 3.6))[1]
    for name, points in curves.items():
        pts = sorted(points, key=lambda p: p["step"])
        ax.plot([p["step"] for p in pts], [100 * p["success"] for p in pts], "o-", ms=3, label=name)
    ax.axhline(100 * threshold, ls="--", color="grey", lw=1)
    ax.set(xlabel="training step", ylabel="success (%)", ylim=(0, 100))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or "success during training", fontsize=10)
    return ax
