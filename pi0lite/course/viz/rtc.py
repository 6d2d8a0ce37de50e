"""Real-time chunking figures: prefix weights, success vs delay, a rollout with its chunk boundaries, jerk.

Every function takes arrays (and an optional ``ax``) and returns the Axes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

METHOD_STYLE = {"naive": ("tab:red", "o"), "ensemble": ("tab:orange", "s"), "rtc": ("tab:blue", "^"),
                "rtc_train": ("tab:green", "D")}


def _axes(ax, size=(5, 3.4)):
    return plt.subplots(figsize=size)[1] if ax is None else ax


def _style(name):
    return METHOD_STYLE.get(name, ("tab:gray", "."))


def plot_prefix_weights(weights: dict, *, delay: int, exec_horizon: int, ax=None, title: str | None = None):
    """Prefix weights over the horizon (``{label: [H]}``), with ``delay`` and ``H − s`` marked."""
    ax = _axes(ax)
    for label, w in weights.items():
        w = np.asarray(w)
        ax.step(np.arange(len(w)), w, where="mid", marker="o", ms=3, label=label)
    h = len(next(iter(weights.values())))
    ax.axvline(delay - 0.5, color="k", ls=":", lw=1)
    ax.axvline(h - exec_horizon - 0.5, color="k", ls="--", lw=1)
    ax.text(delay - 0.5, 1.04, " d", fontsize=9, va="bottom")
    ax.text(h - exec_horizon - 0.5, 1.04, " H − s", fontsize=9, va="bottom")
    ax.set_ylim(-0.05, 1.2)
    ax.set_xlabel("index in the new chunk")
    ax.set_ylabel("weight W")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"prefix weights (d = {delay}, s = {exec_horizon}, H = {h})")
    return ax


def plot_success_vs_delay(delays, success: dict, *, ax=None, title: str = "success vs inference delay"):
    """``success[method]`` (fractions, one per delay) against the delay in control steps."""
    ax = _axes(ax)
    for name, values in success.items():
        colour, marker = _style(name)
        ax.plot(delays, 100 * np.asarray(values), color=colour, marker=marker, label=name)
    ax.set_xticks(list(delays))
    ax.set_xlabel("delay d (control steps)")
    ax.set_ylabel("success (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title)
    return ax


def plot_chunk_boundaries(path, boundaries, *, ax=None, colour: str = "tab:blue", title: str | None = None):
    """One path ``[t, 2]`` (positions) with a cross where each new chunk's first action starts."""
    ax = _axes(ax, (3.4, 3.4))
    path = np.asarray(path)
    ax.plot(path[:, 0], path[:, 1], color=colour, lw=1.5)
    b = np.asarray([x for x in boundaries if x < len(path)], int)
    if b.size:
        ax.plot(path[b, 0], path[b, 1], "x", color="k", ms=7, mew=1.5, label="new chunk")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_jerk_histogram(jerks: dict, *, ax=None, bins: int = 30, title: str = "jerk at chunk boundaries"):
    """Histograms of ``jerks[method]`` (|Δ³p| / DT³ per boundary), log-spaced bins."""
    ax = _axes(ax)
    values = [np.asarray(v) for v in jerks.values() if np.size(v)]
    top = max(float(np.max(v)) for v in values) if values else 1.0
    edges = np.geomspace(1e-2, max(top, 1e-1) * 1.01, bins + 1)
    for name, v in jerks.items():
        colour, _ = _style(name)
        ax.hist(np.clip(np.asarray(v), edges[0], None), bins=edges, histtype="step", lw=1.5, color=colour, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("jerk (arena units / s³)")
    ax.set_ylabel("boundaries")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title)
    return ax
