"""Smoke tests: the attention heatmap returns its Axes with the image, labels and segments."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course.viz import plot_attention


def _probs(t, s, seed=0):
    x = np.random.default_rng(seed).random((t, s))
    return x / x.sum(-1, keepdims=True)


def test_plot_attention_square_with_segments():
    probs = _probs(6, 6)
    fig, ax = plt.subplots()
    out = plot_attention(probs, segments=[("prefix", 3), ("state", 1), ("actions", 2)], ax=ax, title="layer 0")
    assert out is ax
    np.testing.assert_allclose(ax.images[0].get_array(), probs, rtol=1e-6)
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query" and ax.get_title() == "layer 0"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["prefix", "state", "actions"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["prefix", "state", "actions"]
    assert len(ax.lines) == 4  # two boundaries on each axis
    plt.close(fig)


def test_plot_attention_rectangular_key_segments_and_new_figure():
    ax = plot_attention(_probs(3, 7), segments=[("suffix", 3)], key_segments=[("cache", 4), ("suffix", 3)], colorbar=False)
    assert ax.images[0].get_array().shape == (3, 7)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cache", "suffix"]
    plt.close(ax.figure)


def test_plot_attention_rejects_bad_input():
    with pytest.raises(ValueError, match="one head"):
        plot_attention(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="query segments cover 4"):
        plot_attention(_probs(3, 3), segments=[("a", 4)])
