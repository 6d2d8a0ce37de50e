"""Meta-World plots: grouped success bars (with asymmetric error bars) and frame strips."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course.viz import plot_frame_strip, plot_task_success


def test_plot_task_success_bar_heights_and_errors():
    success = {"pi0": {"a": 0.9, "b": 0.5}, "mse": {"a": 0.7, "b": 0.2}}
    errors = {"pi0": {"a": (0.1, 0.05), "b": 0.2}, "mse": {"a": (0.1, 0.1), "b": (0.1, 0.3)}}
    fig, ax = plt.subplots()
    out = plot_task_success(success, errors=errors, episodes={"a": 20, "b": 20}, ax=ax, title="t")
    assert out is ax
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [0.9, 0.5, 0.7, 0.2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a\n(n=20)", "b\n(n=20)"]
    assert "pi0 (mean 70%)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_plot_task_success_rejects_mismatched_tasks():
    with pytest.raises(ValueError, match="expected"):
        plot_task_success({"pi0": {"a": 1.0}, "mse": {"b": 1.0}})
    with pytest.raises(ValueError, match="at least one"):
        plot_task_success({})


def test_plot_frame_strip_concatenates_frames():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1] = 255
    fig, ax = plt.subplots()
    plot_frame_strip(frames, titles=["a", "b", "c"], ax=ax)
    img = ax.images[0].get_array()
    assert img.shape == (8, 24, 3) and img[0, 8:16].min() == 255 and img[0, :8].max() == 0
    with pytest.raises(ValueError, match="k, H, W, 3"):
        plot_frame_strip(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="titles"):
        plot_frame_strip(frames, titles=["a"])
    plt.close(fig)
