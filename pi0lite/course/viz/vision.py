"""Pictures of the vision tower (notebook 14): per-patch maps over an image, the token budget.

Axis letters: r, c patch-grid rows and columns · y, x pixels · k segments of a prefix.
"""

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float, Num
from matplotlib.patches import Rectangle

__all__ = ["plot_patch_map", "plot_token_budget"]


def plot_patch_map(
    values: Float[ArrayLike, "r c"],
    *,
    image: Num[ArrayLike, "y x 3"] | None = None,
    mark: int | None = None,
    ax=None,
    title: str | None = None,
    cmap: str = "magma",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
):
    """One number per patch, drawn over the image it came from.

    Args:
      values: ``[r, c]`` a value per patch (attention received, similarity to one token, …),
        in the tower's row-major patch order reshaped to the grid.
      image: optional ``[S, S, 3]`` uint8 (or float in [−1, 1]) drawn underneath; the map is then
        half transparent so the objects stay visible.
      mark: a token index to outline (e.g. the query patch of an attention map).
    Returns:
      The Axes (the map is the last image in ``ax.images``).
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be a [rows, cols] patch grid, got shape {v.shape}")
    rows, cols = v.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    if image is not None:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"image must be [S, S, 3], got shape {img.shape}")
        if img.dtype != np.uint8:
            img = np.clip((img.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
        ax.imshow(img, extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), interpolation="nearest")
    shown = ax.imshow(v, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.6 if image is not None else 1.0,
                      interpolation="nearest", extent=(-0.5, cols - 0.5, rows - 0.5, -0.5))
    for k in range(1, rows):
        ax.axhline(k - 0.5, color="white", linewidth=0.5)
    for k in range(1, cols):
        ax.axvline(k - 0.5, color="white", linewidth=0.5)
    if mark is not None:
        r, c = divmod(int(mark), cols)
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="#00e5ff", linewidth=2.5))
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xlabel("patch column")
    ax.set_ylabel("patch row")
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    return ax


def plot_token_budget(setups: Mapping[str, Mapping[str, int]], *, ax=None, title: str | None = None):
    """Horizontal stacked bars: how many prefix tokens each part of each set-up takes.

    Args:
      setups: ``{set-up name: {segment name: token count}}``, e.g.
        ``{"pi0, 3 cameras": {"base camera": 256, "left wrist": 256, "right wrist": 256, "prompt": 48}}``.
    Returns:
      The Axes (one bar patch per segment; total written at the end of each bar).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.8 + 0.55 * len(setups)))
    names = list(setups)
    palette, labelled = {}, set()
    colours = ("#4c72b0", "#55a868", "#8172b2", "#ccb974", "#64b5cd", "#c44e52")
    total_max = max(sum(parts.values()) for parts in setups.values())
    for row, name in enumerate(names):
        left = 0
        for segment, count in setups[name].items():
            colour = palette.setdefault(segment, colours[len(palette) % len(colours)])
            ax.barh(row, count, left=left, color=colour, edgecolor="white",
                    label=None if segment in labelled else segment)
            labelled.add(segment)
            left += count
        ax.text(left + 0.01 * total_max, row, f"{left}", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, total_max * 1.12)
    ax.set_xlabel("prefix tokens")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return ax
