"""Pictures of scaling pi0 (notebook 12): the device mesh, a parameter's shards, LoRA, the memory table.

Axis letters: r, c mesh rows (``data``) and columns (``fsdp``) · i, o a weight's input and output
axes · q LoRA rank · f FSDP sizes.
"""

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Float, Int
from matplotlib.patches import Rectangle

__all__ = ["plot_mesh", "plot_shards", "plot_lora", "plot_memory"]

_COLOURS = plt.get_cmap("tab10").colors


def plot_mesh(device_ids: Int[ArrayLike, "r c"], *, axis_names: Sequence[str] = ("data", "fsdp"), ax=None,
              title: str | None = None):
    """The device mesh as a grid: one box per device (its id), rows along ``axis_names[0]``,
    columns along ``axis_names[1]``; boxes of one column share a colour (they hold the same shard
    of an FSDP-sharded parameter).

    Args:
      device_ids: ``[r, c]`` the id of the device at each mesh position (``mesh.device_ids``).
    Returns:
      The Axes.
    """
    ids = np.asarray(device_ids)
    if ids.ndim != 2:
        raise ValueError(f"device_ids must be a [rows, cols] mesh, got shape {ids.shape}")
    rows, cols = ids.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * cols + 1.6, 0.8 * rows + 1.2))
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(Rectangle((c + 0.05, r + 0.05), 0.9, 0.9, facecolor=_COLOURS[c % 10], alpha=0.35,
                                   edgecolor="black"))
            ax.text(c + 0.5, r + 0.5, f"dev {ids[r, c]}", ha="center", va="center", fontsize=10)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_xticks(np.arange(cols) + 0.5, [str(c) for c in range(cols)])
    ax.set_yticks(np.arange(rows) + 0.5, [str(r) for r in range(rows)])
    ax.set_xlabel(f"{axis_names[1]} (size {cols})")
    ax.set_ylabel(f"{axis_names[0]} (size {rows})")
    ax.set_aspect("equal")
    ax.tick_params(length=0)
    if title:
        ax.set_title(title)
    return ax


def plot_shards(shape: Sequence[int], index_map: Mapping[int, Sequence[slice]], *, ax=None,
                title: str | None = None):
    """Who holds which part of a 2-D array: one rectangle per distinct shard, labelled with the
    devices that hold it (several devices when it is replicated over the ``data`` axis).

    Args:
      shape: ``(rows, cols)`` of the array.
      index_map: ``{device id: (row slice, col slice)}``, e.g. from
        ``array.sharding.devices_indices_map(array.shape)`` with devices replaced by their ids.
    Returns:
      The Axes (the array drawn in unit coordinates: its aspect ratio is not kept).
    """
    if len(shape) != 2:
        raise ValueError(f"plot_shards draws 2-D arrays, got shape {tuple(shape)}")
    n_rows, n_cols = shape
    blocks: dict[tuple[int, int, int, int], list[int]] = {}
    for dev, idx in sorted(index_map.items()):
        if len(idx) != 2:
            raise ValueError(f"index_map[{dev}] must hold 2 slices for a 2-D array, got {idx}")
        r0, r1, _ = idx[0].indices(n_rows)
        c0, c1, _ = idx[1].indices(n_cols)
        blocks.setdefault((r0, r1, c0, c1), []).append(dev)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.6))
    for k, ((r0, r1, c0, c1), devs) in enumerate(sorted(blocks.items())):
        x, y, w, h = c0 / n_cols, r0 / n_rows, (c1 - c0) / n_cols, (r1 - r0) / n_rows
        ax.add_patch(Rectangle((x, y), w, h, facecolor=_COLOURS[k % 10], alpha=0.4, edgecolor="black"))
        label = "dev " + ",".join(str(d) for d in devs)
        size = f"[{r1 - r0}, {c1 - c0}]"
        ax.text(x + w / 2, y + h / 2, f"{label}\n{size}" if h > 0.2 and w > 0.3 else label, ha="center",
                va="center", fontsize=8 if w < 0.3 or h < 0.15 else 9, rotation=90 if w < 0.15 else 0)
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xticks([0, 1], ["0", str(n_cols)])
    ax.set_yticks([0, 1], ["0", str(n_rows)])
    ax.set_xlabel("axis 1")
    ax.set_ylabel("axis 0")
    if title:
        ax.set_title(title)
    return ax


def plot_lora(w: Float[ArrayLike, "i o"], a: Float[ArrayLike, "i q"], b: Float[ArrayLike, "q o"],
              scale: float = 1.0, *, axes=None, title: str | None = None):
    """The low-rank picture: the frozen ``W`` [i, o], the factors ``A`` [i, r] and ``B`` [r, o], and
    ``ΔW = A·B·scale``; W, A and ΔW share their rows, B and ΔW their columns (A and B are drawn
    three times thicker than their rank, to stay visible)

    Returns:
      The four Axes (W, A, B, ΔW).
    """
    w, a, b = (np.asarray(x, np.float64) for x in (w, a, b))
    if w.ndim != 2 or a.shape != (w.shape[0], a.shape[-1]) or b.shape != (a.shape[-1], w.shape[1]):
        raise ValueError(f"need W [i, o], A [i, r], B [r, o]; got W {w.shape}, A {a.shape}, B {b.shape}")
    delta = a @ b * scale
    if axes is None:
        i, o = w.shape
        r = a.shape[1]
        # W | A, with B above ΔW: ΔW's rows come from A, its columns from B
        fig = plt.figure(figsize=(9, 4.2))
        grid = fig.add_gridspec(2, 3, width_ratios=[o, 3 * r, o], height_ratios=[3 * r, i], wspace=0.3, hspace=0.25)
        axes = [fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]), fig.add_subplot(grid[0, 2]),
                fig.add_subplot(grid[1, 2])]
    panels = [(w, f"W (frozen) {w.shape[0]}×{w.shape[1]}"), (a, f"A {a.shape[0]}×{a.shape[1]}"),
              (b, f"B {b.shape[0]}×{b.shape[1]}"), (delta, f"ΔW = A·B·{scale:g} (rank {a.shape[1]})")]
    for ax, (m, label) in zip(axes, panels):
        lim = float(np.max(np.abs(m))) or 1.0
        ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", aspect="auto")
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_memory(table: Mapping[str, Mapping[int, float]], *, gpus: Mapping[str, float] | None = None, ax=None,
                title: str | None = None, ylabel: str = "GB per device"):
    """Grouped bars: memory per device for each mode (``table[mode][fsdp]``) against the FSDP size,
    with dashed lines at the memory of some GPUs (``gpus[name] = GB``). Log scale.

    Returns:
      The Axes.
    """
    modes = list(table)
    sizes = sorted({int(f) for m in modes for f in table[m]})
    if not modes or not sizes:
        raise ValueError("table must hold at least one mode with one FSDP size")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        xs = [j + (k - (len(modes) - 1) / 2) * width for j, f in enumerate(sizes) if f in table[mode]]
        ys = [table[mode][f] for f in sizes if f in table[mode]]
        ax.bar(xs, ys, width=width * 0.95, color=_COLOURS[k % 10], label=mode)
    for name, gb in (gpus or {}).items():
        ax.axhline(gb, color="0.3", linestyle="--", linewidth=1)
        ax.annotate(f"{name} ({gb:g} GB)", (1.0, gb), xycoords=("axes fraction", "data"), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(range(len(sizes)), [f"FSDP {f}" for f in sizes])
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=len(modes), frameon=False)
    if title:
        ax.set_title(title)
    return ax
