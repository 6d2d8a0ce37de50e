"""Flow-matching pictures: 2-D trajectories, point clouds, the time distribution, the time
embedding and loss curves.

Axis letters: k Euler steps + 1, b points, w embedding width, n training steps.
"""

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator
from jaxtyping import ArrayLike, Float

__all__ = ["plot_flow_2d", "plot_points_2d", "plot_time_histogram", "plot_time_embedding", "plot_losses"]

_COLORS = ("#2b5d8a", "#c44e52", "#55a868", "#8172b2", "#ccb974")


def _points(x, what: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 3 and x.shape[1] == 1:  # [b, 1, 2] one-step action chunks
        x = x[:, 0]
    if x.ndim != 2 or x.shape[-1] != 2:
        raise ValueError(f"{what} must be [points, 2] (or [points, 1, 2]), got shape {x.shape}")
    return x


def plot_flow_2d(
    trajectory: Float[ArrayLike, "k b 2"],
    *,
    data: Float[ArrayLike, "n 2"] | None = None,
    ax=None,
    title: str | None = None,
    max_paths: int = 200,
):
    """Draw sampling paths from noise (t = 1, pale dots) to samples (t = 0, dark dots).

    Args:
      trajectory: ``[k, b, 2]`` (or ``[k, b, 1, 2]``) positions after each Euler step, starting at
        the noise; only the first ``max_paths`` paths are drawn.
      data: optional ``[n, 2]`` training points drawn underneath in grey.
    Returns:
      The Axes: one line per path, scatter collections for data / start / end points.
    """
    traj = np.asarray(trajectory, np.float32)
    if traj.ndim == 4 and traj.shape[2] == 1:
        traj = traj[:, :, 0]
    if traj.ndim != 3 or traj.shape[-1] != 2:
        raise ValueError(f"trajectory must be [steps + 1, points, 2], got shape {traj.shape}")
    traj = traj[:, :max_paths]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    if data is not None:
        d = _points(data, "data")
        ax.scatter(d[:, 0], d[:, 1], s=4, color="#bbbbbb", label="data", zorder=1)
    for path in np.swapaxes(traj, 0, 1):
        ax.plot(path[:, 0], path[:, 1], color="#2b5d8a", alpha=0.25, linewidth=0.7, zorder=2)
    ax.scatter(traj[0, :, 0], traj[0, :, 1], s=6, color="#9ecae1", label="noise (t = 1)", zorder=3)
    ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=8, color="#08306b", label="samples (t = 0)", zorder=4)
    ax.set_xlabel("action dim 0")
    ax.set_ylabel("action dim 1")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)  # beside, not on, the paths
    if title:
        ax.set_title(title)
    return ax


def plot_points_2d(groups: Mapping[str, Float[ArrayLike, "b 2"]], *, ax=None, title: str | None = None):
    """Scatter several named 2-D point clouds (e.g. data, flow samples, regression output).

    One group is named in the title (when no ``title`` is given); several get a legend beside
    the axes, where it cannot hide points.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    for k, (name, pts) in enumerate(groups.items()):
        p = _points(pts, name)
        ax.scatter(p[:, 0], p[:, 1], s=6, color=_COLORS[k % len(_COLORS)], label=name, alpha=0.7)
    ax.set_xlabel("action dim 0")
    ax.set_ylabel("action dim 1")
    if len(groups) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False, markerscale=2)
    if title or len(groups) == 1:
        ax.set_title(title or next(iter(groups)))
    return ax


def plot_time_histogram(times: Float[ArrayLike, " b"], *, ax=None, bins: int = 40, show_density: bool = True):
    """Histogram of training times, with the Beta(1.5, 1)·0.999 + 0.001 density on top."""
    times = np.asarray(times, np.float64).ravel()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ax.hist(times, bins=bins, range=(0.0, 1.0), density=True, color="#9ecae1", edgecolor="white", label="samples")
    if show_density:
        t = np.linspace(0.001, 1.0, 200)
        u = (t - 0.001) / 0.999
        ax.plot(t, 1.5 * np.sqrt(u) / 0.999, color="#08306b", label="Beta(1.5, 1) density")
    ax.set_xlabel("t   (0 = data, 1 = noise)")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_time_embedding(times: Float[ArrayLike, " k"], embedding: Float[ArrayLike, "k w"], *, ax=None, title: str | None = None):
    """The sine–cosine embedding as an image: one row per time, sines left of the line, cosines right."""
    times = np.asarray(times, np.float32)
    emb = np.asarray(embedding, np.float32)
    if emb.ndim != 2 or emb.shape[0] != times.shape[0]:
        raise ValueError(f"embedding must be [times, width] with {times.shape[0]} rows, got shape {emb.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    w = emb.shape[1]
    ax.imshow(emb, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
              extent=(-0.5, w - 0.5, float(times[-1]), float(times[0])))
    ax.axvline(w / 2 - 0.5, color="black", linewidth=1)
    ax.text(w / 4, float(times[0]), "sin", ha="center", va="bottom")
    ax.text(3 * w / 4, float(times[0]), "cos", ha="center", va="bottom")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # dimensions are whole numbers
    ax.set_xlabel("embedding dimension (short periods → long periods)")
    ax.set_ylabel("time t")
    if title:
        ax.set_title(title, pad=16)
    return ax


def plot_losses(losses: Mapping[str, Float[ArrayLike, " n"]], *, ax=None, smooth: int = 25, log: bool = True):
    """Training-loss curves (moving average over ``smooth`` steps), one per name."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for k, (name, curve) in enumerate(losses.items()):
        curve = np.asarray(curve, np.float64)
        if smooth > 1 and curve.size >= smooth:
            curve = np.convolve(curve, np.ones(smooth) / smooth, mode="valid")
        ax.plot(curve, color=_COLORS[k % len(_COLORS)], label=name)
    if log:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:.3g}")  # 0.35, not 3.5×10⁻¹
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    return ax
