"""Smoke tests of the mask and token-layout plots: they draw what they claim on the given Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from pi0lite.course import viz
from pi0lite.masks import make_attn_mask

SEGMENTS = [("image", 4), ("text", 3), ("state", 1), ("actions", 3)]
AR = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0], bool)


def test_plot_attn_mask_image_and_labels():
    mask = np.asarray(make_attn_mask(np.ones((1, 11), bool), AR))[0]
    fig, ax = plt.subplots()
    out = viz.plot_attn_mask(mask, segments=SEGMENTS, ax=ax, title="pi0")
    assert out is ax
    assert np.array_equal(ax.images[0].get_array().astype(bool), mask)
    assert "query" in ax.get_ylabel() and "key" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image", "text", "state", "actions"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["image", "text", "state", "actions"]
    assert len(ax.lines) == 2 * 3  # 3 inner boundaries, horizontal + vertical
    assert ax.get_title() == "pi0"
    plt.close(fig)


def test_plot_attn_mask_values_and_errors():
    mask = np.eye(3, dtype=bool)
    ax = viz.plot_attn_mask(mask, show_values=True)
    assert [t.get_text() for t in ax.texts] == ["1", "0", "0", "0", "1", "0", "0", "0", "1"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="segments cover 5"):
        viz.plot_attn_mask(mask, segments=[("a", 5)])
    with pytest.raises(ValueError, match="one example"):
        viz.plot_attn_mask(np.ones((1, 3, 3), bool))


def test_plot_token_layout():
    valid = np.ones(11, bool)
    valid[6] = False
    fig, ax = plt.subplots()
    out = viz.plot_token_layout(SEGMENTS, input_mask=valid, ar_mask=AR, prefix_len=7, ax=ax)
    assert out is ax
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 11
    assert boxes[6].get_hatch() == "////" and boxes[5].get_hatch() is None
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image\n×4", "text\n×3", "state\n×1", "actions\n×3"]
    assert {t.get_text() for t in ax.texts} == {"prefix", "suffix"}
    markers = [line for line in ax.lines if line.get_marker() == "v"]
    assert list(markers[0].get_xdata()) == [7.5, 8.5]
    plt.close(fig)
    with pytest.raises(ValueError, match="input_mask must have shape"):
        viz.plot_token_layout(SEGMENTS, input_mask=np.ones(3, bool))


def test_plot_image_patches():
    image = np.zeros((32, 32, 3), np.uint8)
    ax = viz.plot_image_patches(image, 8)
    assert ax.images[0].get_array().shape == (32, 32, 3)
    assert len(ax.lines) == 6 and len(ax.texts) == 16 and ax.texts[-1].get_text() == "15"
    assert "16 patches" in ax.get_title()
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="must divide"):
        viz.plot_image_patches(image, 5)
