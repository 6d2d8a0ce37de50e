"""Attention probabilities as a heatmap: rows are queries, columns are keys (project-wide rule).

Axis letters: t query tokens, s key tokens. ``segments`` name consecutive token ranges, e.g.
``[("image", 16), ("text", 8), ("state", 1), ("actions", 4)]``; their boundaries are drawn as
lines and their names label the axes, so you can read "actions attend to image" at a glance.
"""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float

Segments = Sequence[tuple[str, int]]

__all__ = ["plot_attention"]


def _check_segments(segments: Segments | None, length: int, axis: str) -> None:
    if segments is None:
        return
    total = sum(int(n) for _, n in segments)
    if total != length:
        raise ValueError(
            f"{axis} segments cover {total} tokens ({[(s, n) for s, n in segments]}), "
            f"but the {axis} axis has {length}"
        )


def _label_axis(ax, segments: Segments | None, axis: str, length: int) -> None:
    """Segment boundaries as lines and segment names as ticks at the segment centres."""
    if segments is None:
        return
    edges = np.cumsum([0] + [int(n) for _, n in segments])
    centres = (edges[:-1] + edges[1:]) / 2 - 0.5
    names = [name for name, _ in segments]
    line = ax.axhline if axis == "query" else ax.axvline
    for edge in edges[1:-1]:
        line(edge - 0.5, color="white", linewidth=1.5)
    if axis == "query":
        ax.set_yticks(centres, names)
    else:
        long = max(len(name) for name in names) > 6
        ax.set_xticks(centres, names, rotation=90 if long else 0, ha="center")  # vertical: short segments sit close


def plot_attention(
    probs: Float[ArrayLike, "t s"],
    *,
    segments: Segments | None = None,
    key_segments: Segments | None = None,
    ax=None,
    title: str | None = None,
    colorbar: bool = True,
    cmap: str = "viridis",
):
    """Draw attention probabilities ``probs[query, key]`` (one head, one example).

    Args:
      probs: ``[t, s]`` probabilities; each row (a query) sums to 1 over the keys.
      segments: ``(name, length)`` pairs along the query axis; also used for the keys when
        ``key_segments`` is None and the matrix is square.
      key_segments: ``(name, length)`` pairs along the key axis (e.g. cached prefix + suffix).
      ax: the Axes to draw on; a new figure is made when None.
      title, colorbar, cmap: cosmetics.
    Returns:
      The Axes (the image is ``ax.images[0]``; x label "key", y label "query").
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2:
        raise ValueError(f"probs must be [queries, keys] (one head), got shape {probs.shape}")
    if key_segments is None and segments is not None and probs.shape[0] == probs.shape[1]:
        key_segments = segments
    _check_segments(segments, probs.shape[0], "query")
    _check_segments(key_segments, probs.shape[1], "key")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    image = ax.imshow(probs, cmap=cmap, vmin=0.0, vmax=max(float(probs.max()), 1e-12), interpolation="nearest")
    _label_axis(ax, segments, "query", probs.shape[0])
    _label_axis(ax, key_segments, "key", probs.shape[1])
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention probability")
    return ax
