"""Attention masks and the token layout, drawn with segment labels.

Axis letters: n queries, s keys (a mask is ``[n, s]``, rows are queries, columns keys: the
project-wide rule). ``segments`` are ``(name, length)`` pairs naming consecutive tokens, e.g.
``[("image", 16), ("text", 8), ("state", 1), ("actions", 16)]``.
"""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Bool
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

Segments = Sequence[tuple[str, int]]

__all__ = ["plot_attn_mask", "plot_token_layout", "SEGMENT_COLORS"]

#: One colour per segment name, shared by the layout strip and the mask heatmap.
SEGMENT_COLORS = {
    "image": "#4c72b0", "text": "#55a868", "state": "#c44e52", "actions": "#8172b2",
    "time": "#ccb974", "prompt": "#55a868", "action tokens": "#8172b2",
}
_FALLBACK = ("#64b5cd", "#dd8452", "#937860", "#da8bc3", "#8c8c8c")
_MASK_CMAP = ListedColormap(["#f4f4f4", "#2b5d8a"])  # False, True


def _edges(segments: Segments, length: int, what: str) -> np.ndarray:
    edges = np.cumsum([0] + [int(n) for _, n in segments])
    if edges[-1] != length:
        raise ValueError(f"{what}: segments cover {edges[-1]} tokens {list(segments)}, but there are {length}")
    return edges


def _color(name: str, index: int) -> str:
    """The colour of a known segment name, or of the first known name it contains ("wrist image")."""
    if name in SEGMENT_COLORS:
        return SEGMENT_COLORS[name]
    for known, color in SEGMENT_COLORS.items():
        if known in name:
            return color
    return _FALLBACK[index % len(_FALLBACK)]


def plot_attn_mask(
    mask: Bool[ArrayLike, "n s"],
    *,
    segments: Segments | None = None,
    ax=None,
    title: str | None = None,
    show_values: bool = False,
):
    """Draw a bool attention mask: dark = "query (row) may attend to key (column)".

    Args:
      mask: ``[n, s]`` bool (one example; take ``mask[0]`` of a batch).
      segments: ``(name, length)`` pairs; boundaries are drawn as orange lines and the names
        label both axes (square masks only). Without segments, the ticks are token indices.
      ax: the Axes to draw on (a new figure when None).
      title: optional title.
      show_values: write 1/0 in every cell (small masks, e.g. to compare with a hand prediction).
    Returns:
      The Axes (the image is ``ax.images[0]``; x label "key", y label "query").
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be [queries, keys] (one example), got shape {mask.shape}")
    mask = mask.astype(bool)
    n, s = mask.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(mask, cmap=_MASK_CMAP, vmin=0, vmax=1, interpolation="nearest")
    if max(n, s) <= 48:  # thin cell borders help counting on small masks
        ax.set_xticks(np.arange(s + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    if segments is not None:
        if n != s:
            raise ValueError(f"segments need a square mask, got shape {mask.shape}")
        edges = _edges(segments, n, "plot_attn_mask")
        for edge in edges[1:-1]:
            ax.axhline(edge - 0.5, color="#ff8c00", linewidth=1.5)
            ax.axvline(edge - 0.5, color="#ff8c00", linewidth=1.5)
        centres = (edges[:-1] + edges[1:]) / 2 - 0.5
        names = [name for name, _ in segments]
        ax.set_xticks(centres, names, rotation=90, ha="center")  # vertical: short segments sit close
        ax.set_yticks(centres, names)
    elif max(n, s) <= 24:
        ax.set_xticks(np.arange(s))
        ax.set_yticks(np.arange(n))
    if show_values:
        for i in range(n):
            for j in range(s):
                ax.text(j, i, int(mask[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if mask[i, j] else "#555555")
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    return ax


def plot_token_layout(
    segments: Segments,
    *,
    input_mask: Bool[ArrayLike, " n"] | None = None,
    ar_mask: Bool[ArrayLike, " n"] | None = None,
    prefix_len: int | None = None,
    ax=None,
    title: str | None = None,
):
    """Draw the token sequence as a strip of boxes, one colour per segment.

    Args:
      segments: ``(name, length)`` pairs in sequence order.
      input_mask: ``[n]`` bool; padding tokens (False) are drawn hatched and pale.
      ar_mask: ``[n]`` bool; tokens that open a new attention block get a ▼ above them.
      prefix_len: number of prefix tokens; draws "prefix" / "suffix" brackets above the strip.
      ax, title: the Axes to draw on (a new one when None) and an optional title.
    Returns:
      The Axes; one ``Rectangle`` patch per token, segment names as x tick labels.
    """
    n = int(sum(int(k) for _, k in segments))
    edges = _edges(segments, n, "plot_token_layout")
    valid = np.ones(n, bool) if input_mask is None else np.asarray(input_mask, bool)
    if valid.shape != (n,):
        raise ValueError(f"input_mask must have shape ({n},) to match the segments, got {valid.shape}")
    if ar_mask is not None and np.shape(ar_mask) != (n,):
        raise ValueError(f"ar_mask must have shape ({n},) to match the segments, got {np.shape(ar_mask)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.25 * n, 14), 1.8))
    for k, (name, _) in enumerate(segments):
        color = _color(name, k)
        for i in range(edges[k], edges[k + 1]):
            ax.add_patch(Rectangle((i, 0), 1, 1, facecolor=color, alpha=1.0 if valid[i] else 0.25,
                                   hatch=None if valid[i] else "////", edgecolor="white", linewidth=0.5))
    if ar_mask is not None:
        opens = np.flatnonzero(np.asarray(ar_mask, bool))
        ax.plot(opens + 0.5, np.full(opens.shape, 1.25), "v", color="black", markersize=5, label="opens a block")
    top = 1.6
    if prefix_len is not None:
        for start, stop, label in ((0, prefix_len, "prefix"), (prefix_len, n, "suffix")):
            if stop > start:
                ax.plot([start + 0.1, stop - 0.1], [top, top], color="black", linewidth=1.5)
                ax.text((start + stop) / 2, top + 0.1, label, ha="center", va="bottom", fontsize=9)
    centres = (edges[:-1] + edges[1:]) / 2
    ax.set_xticks(centres, [f"{name}\n×{k}" for name, k in segments], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(0, n)
    ax.set_ylim(0, top + 0.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("token position →")
    if title:
        ax.set_title(title)
    return ax
