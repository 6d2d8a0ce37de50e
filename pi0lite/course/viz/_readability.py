"""Is a figure readable as a notebook shows it? Used by ``tests/test_figures_readable.py``.

``figure_problems(fig)`` draws the figure once and returns a list of human-readable problems:

* a tick label smaller than ``MIN_POINTS`` at the size it is *displayed*: a notebook shows a
  figure at most ``DISPLAY_WIDTH_IN`` inches wide (1,200 px at 100 dpi), so a wider figure is
  scaled down and its fonts with it;
* two tick labels of one axis whose text boxes overlap (matplotlib's own text extents);
* a legend whose box covers data: a vertex of a line (sampled every 2 px along each segment, so
  a straight line through the legend counts) or a scatter point of any Axes of the figure.

It does not judge colour, titles or annotations inside images; it catches the mistakes that
made notebook figures unreadable before (5 px labels, overlapping log-axis minor labels, a
legend on top of the curves).
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

MIN_POINTS = 8.0
DISPLAY_WIDTH_IN = 12.0
_SAMPLE_PX = 2.0


def _display_scale(fig: Figure, renderer) -> float:
    """How much the notebook shrinks the saved (``bbox_inches="tight"``) figure."""
    width_in = fig.get_tightbbox(renderer).width  # inches
    return min(1.0, DISPLAY_WIDTH_IN / max(width_in, 1e-9))


def _tick_labels(axis):
    labels = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text().strip() and tick.get_visible():
                labels.append(label)
    return labels


def _inside_axis_range(axis, label) -> bool:
    # matplotlib keeps ticks outside the view limits; they are not drawn
    lo, hi = sorted(axis.get_view_interval())
    x, y = label.get_position()
    value = x if axis.axis_name == "x" else y
    span = hi - lo
    return lo - 1e-9 * span <= value <= hi + 1e-9 * span


def _overlaps(boxes) -> list[tuple[int, int]]:
    pairs = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > 0.5 and dy > 0.5:  # more than half a pixel of shared area in both directions
                pairs.append((i, j))
    return pairs


def _line_points(line: Line2D) -> np.ndarray:
    xy = np.asarray(line.get_xydata(), np.float64)
    if xy.size == 0:
        return np.zeros((0, 2))
    pts = line.get_transform().transform(xy)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 2:
        return pts
    out = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.ceil(np.linalg.norm(b - a) / _SAMPLE_PX))
        if n > 1:
            out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
        else:
            out.append(b[None])
    return np.concatenate(out)


def _data_points(fig: Figure) -> list[tuple[str, np.ndarray]]:
    found = []
    for ax in fig.axes:
        clip = ax.get_window_extent()
        for line in ax.get_lines():
            drawn = line.get_linestyle() not in ("None", "none", "") or line.get_marker() not in (None, "None", "none", "")
            if line.get_visible() and drawn:
                pts = _line_points(line)
                keep = (pts[:, 0] >= clip.x0) & (pts[:, 0] <= clip.x1) & (pts[:, 1] >= clip.y0) & (pts[:, 1] <= clip.y1)
                found.append((f"line {line.get_label()!r}", pts[keep]))
        for coll in ax.collections:
            if isinstance(coll, PathCollection) and coll.get_visible():
                offsets = np.asarray(coll.get_offsets(), np.float64)
                if offsets.size:
                    found.append((f"points {coll.get_label()!r}", coll.get_offset_transform().transform(offsets)))
    return found


def figure_problems(fig: Figure) -> list[str]:
    """Readability problems of ``fig`` (empty list: readable). See the module docstring."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scale = _display_scale(fig, renderer)
    problems = []
    for k, ax in enumerate(fig.axes):
        name = f"axes {k}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        for axis in (ax.xaxis, ax.yaxis):
            labels = [lab for lab in _tick_labels(axis) if _inside_axis_range(axis, lab)]
            for lab in labels:
                shown = lab.get_fontsize() * scale
                if shown < MIN_POINTS:
                    problems.append(f"{name}: {axis.axis_name} tick label {lab.get_text()!r} is {shown:.1f} pt as displayed (< {MIN_POINTS})")
                    break
            boxes = [lab.get_window_extent(renderer) for lab in labels]
            for i, j in _overlaps(boxes):
                problems.append(f"{name}: {axis.axis_name} tick labels {labels[i].get_text()!r} and {labels[j].get_text()!r} overlap")
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    points = _data_points(fig) if legends else []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for what, pts in points:
            if len(pts) and np.any((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)):
                problems.append(f"legend {[t.get_text() for t in legend.get_texts()]} covers {what}")
    return problems
