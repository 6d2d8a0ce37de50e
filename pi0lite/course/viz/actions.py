"""Action chunks and their denoising: what ``Pi0.sample_actions`` produces, step by step.

Axis letters: h action horizon (time steps of the chunk), d action dimensions, k Euler states
(``num_steps + 1``: the pure noise at t = 1, then one state per step, down to t = 0).
"""

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float

__all__ = ["plot_action_chunk", "plot_denoising_trajectory"]


def plot_action_chunk(
    actions: Float[ArrayLike, "h d"],
    *,
    reference: Float[ArrayLike, "h d"] | None = None,
    labels: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
):
    """One action chunk: one line per action dimension over the horizon.

    Args:
      actions: ``[h, d]`` the chunk (e.g. ``sample_actions(...)[0]``).
      reference: optional ``[h, d]`` chunk drawn dashed in the same colours (e.g. the expert's).
      labels: names of the ``d`` dimensions (default ``dim 0`` …).
      ax: Axes to draw on; a new figure is made when None.
    Returns:
      The Axes (one line per dimension, plus one per dimension of ``reference``).
    """
    actions = np.asarray(actions, np.float32)
    if actions.ndim != 2:
        raise ValueError(f"actions must be [horizon, dims], got shape {actions.shape}")
    if reference is not None and np.shape(reference) != actions.shape:
        raise ValueError(f"reference must have the actions' shape {actions.shape}, got {np.shape(reference)}")
    labels = list(labels) if labels is not None else [f"dim {i}" for i in range(actions.shape[1])]
    if len(labels) != actions.shape[1]:
        raise ValueError(f"labels has {len(labels)} names for {actions.shape[1]} action dims")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(actions.shape[0])
    for i, name in enumerate(labels):
        (line,) = ax.plot(steps, actions[:, i], marker=".", label=name)
        if reference is not None:
            ax.plot(steps, np.asarray(reference)[:, i], "--", color=line.get_color(), alpha=0.7)
    ax.set_xlabel("step in the chunk")
    ax.set_ylabel("action value")
    # right of the axes: with 7 noisy lines there is no free corner inside
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              title="dashed: reference" if reference is not None else None)
    if title:
        ax.set_title(title)
    return ax


def plot_denoising_trajectory(
    trajectory: Float[ArrayLike, "k h d"],
    *,
    dim: int = 0,
    ax=None,
    title: str | None = None,
    cmap: str = "viridis",
):
    """Euler states of one example from noise (t = 1) to the sampled chunk (t = 0), one dimension.

    Args:
      trajectory: ``[num_steps + 1, h, d]``; slice one example of ``sample_actions(...,
        return_trajectory=True)[1]``, e.g. ``traj[:, 0]``.
      dim: which action dimension to draw.
      ax: Axes to draw on; a new figure is made when None.
    Returns:
      The Axes: one line per Euler state, coloured by flow time t (colorbar), the final one bold.
    """
    trajectory = np.asarray(trajectory, np.float32)
    if trajectory.ndim != 3:
        raise ValueError(f"trajectory must be [num_steps + 1, horizon, dims], got shape {trajectory.shape}")
    if not 0 <= dim < trajectory.shape[2]:
        raise ValueError(f"dim must be in [0, {trajectory.shape[2]}), got {dim}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    num_states = trajectory.shape[0]
    times = 1.0 - np.arange(num_states) / max(num_states - 1, 1)  # t = 1 (noise) … 0 (actions)
    colours = mpl.colormaps[cmap]
    steps = np.arange(trajectory.shape[1])
    for i, t in enumerate(times):
        last = i == num_states - 1
        ax.plot(
            steps,
            trajectory[i, :, dim],
            color=colours(1.0 - t),
            linewidth=2.5 if last else 1.0,
            alpha=1.0 if last or i == 0 else 0.6,
        )
    mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0.0, 1.0), cmap=colours.reversed())
    ax.figure.colorbar(mappable, ax=ax, label="flow time t (1 = noise, 0 = actions)")
    ax.set_xlabel("step in the chunk")
    ax.set_ylabel(f"action dim {dim}")
    ax.set_title(title or f"denoising: {num_states - 1} Euler steps from t = 1 to t = 0")
    return ax
