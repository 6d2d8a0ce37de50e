"""Plots for the FAST tokenizer and pi0-FAST (notebooks 07 and 08).

Axis letters: h horizon (time), f DCT frequency, d action dim, l token slots.
Every function takes arrays and an optional ``ax`` and returns the Axes it drew on.
"""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Bool, Float
from matplotlib.colors import ListedColormap
from matplotlib.ticker import NullFormatter

__all__ = ["plot_dct_coefficients", "plot_scale_sweep", "plot_token_masks"]


def plot_dct_coefficients(
    coeffs: Float[ArrayLike, "f d"], *, ax=None, title: str | None = None, max_freq: int | None = None
):
    """Heatmap of DCT coefficients: rows are frequencies (0 = the mean at the top), columns dims.

    Red is positive, blue negative, white zero; ``max_freq`` crops to the first frequencies.
    """
    c = np.asarray(coeffs, np.float64)
    if c.ndim != 2:
        raise ValueError(f"coeffs must be [frequency, action_dim], got shape {c.shape}")
    if max_freq is not None:
        c = c[:max_freq]
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 4.5))
    lim = max(float(np.abs(c).max()), 1e-12)
    im = ax.imshow(c, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, fraction=0.05)
    ax.set_xlabel("action dim d")
    ax.set_ylabel("frequency f")
    if title:
        ax.set_title(title)
    return ax


def plot_scale_sweep(
    scales: Sequence[float],
    tokens_per_chunk: Sequence[float],
    errors: Sequence[float],
    *,
    naive: int | None = None,
    ax=None,
    error_label: str = "RMSE",
):
    """Tokens per chunk (left axis) and reconstruction error (right axis, log) against ``scale``."""
    scales, tokens, errors = (np.asarray(a, np.float64) for a in (scales, tokens_per_chunk, errors))
    if not (scales.shape == tokens.shape == errors.shape) or scales.ndim != 1:
        raise ValueError(f"scales, tokens_per_chunk, errors must be equal-length 1-d: {scales.shape}, {tokens.shape}, {errors.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(scales, tokens, "o-", color="#4c72b0", label="tokens per chunk")
    if naive is not None:
        ax.axhline(naive, color="#4c72b0", linestyle=":", label=f"naive ({naive})")
    ax.set_xscale("log")
    # label exactly the swept scales; log-axis minor labels (2×10⁰, 3×10⁰, …) would collide
    ax.set_xticks(scales, [f"{s:g}" for s in scales])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("scale")
    ax.set_ylabel("tokens per chunk", color="#4c72b0")
    right = ax.twinx()
    right.plot(scales, errors, "s--", color="#c44e52", label=error_label)
    right.set_yscale("log")
    right.set_ylabel(error_label, color="#c44e52")
    lines = ax.get_lines() + right.get_lines()
    # the legend sits below the axes, where it cannot cover a curve
    ax.legend(lines, [line.get_label() for line in lines], loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=len(lines), fontsize=8, frameon=False)
    return ax


def plot_token_masks(
    input_mask: Bool[ArrayLike, "l"],
    ar_mask: Bool[ArrayLike, "l"],
    loss_mask: Bool[ArrayLike, "l"],
    *,
    labels: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
    slots_per_row: int = 36,
):
    """Three rows (input / ar / loss) over the token slots of one example; dark = 1.

    Without ``ax``, a long example is wrapped into strips of ``slots_per_row`` slots, one under
    the other, so the figure stays about 8 inches wide and the slot labels readable (9 pt) at
    the size a notebook shows it. Returns the first strip's Axes (``ax.figure.axes`` has all).
    """
    rows = np.stack([np.asarray(m).astype(bool) for m in (input_mask, ar_mask, loss_mask)])
    if rows.ndim != 2:
        raise ValueError(f"masks must be 1-d and of equal length, got {[np.shape(m) for m in (input_mask, ar_mask, loss_mask)]}")
    n = rows.shape[1]
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: {len(labels)} labels for {n} slots")
    if ax is not None:
        axes, starts = [ax], [0]
    else:
        starts = list(range(0, n, slots_per_row))
        height = 1.3 + (0.45 if labels is not None else 0.2)
        _, axes = plt.subplots(len(starts), 1, figsize=(max(4.0, min(n, slots_per_row) * 0.22), height * len(starts)), squeeze=False)
        axes = list(axes[:, 0])
    for strip, start in zip(axes, starts):
        stop = n if len(axes) == 1 else min(start + slots_per_row, n)
        strip.imshow(rows[:, start:stop], cmap=ListedColormap(["#f4f4f4", "#2b5d8a"]), vmin=0, vmax=1,
                     aspect="auto", interpolation="nearest", extent=(start - 0.5, stop - 0.5, 2.5, -0.5))
        strip.set_yticks([0, 1, 2], ["input", "ar", "loss"])
        if labels is not None:
            strip.set_xticks(np.arange(start, stop), [repr(s)[1:-1] for s in labels[start:stop]], rotation=90, fontsize=9)
        else:
            strip.set_xlabel("token slot")
    if title:
        axes[0].set_title(title)
    if len(axes) > 1:
        axes[0].figure.tight_layout()
    return axes[0]
