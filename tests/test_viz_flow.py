"""Smoke tests of the flow-matching plots."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course import viz


def test_plot_flow_2d():
    traj = np.cumsum(np.random.default_rng(0).standard_normal((6, 10, 1, 2)), axis=0)
    fig, ax = plt.subplots()
    assert viz.plot_flow_2d(traj, data=np.zeros((5, 2)), ax=ax, title="paths") is ax
    assert len(ax.lines) == 10
    assert len(ax.collections) == 3  # data, start, end
    assert np.allclose(ax.collections[2].get_offsets(), traj[-1, :, 0])
    assert "action" in ax.get_xlabel() and ax.get_title() == "paths"
    plt.close(fig)
    with pytest.raises(ValueError, match="trajectory"):
        viz.plot_flow_2d(np.zeros((3, 4, 3)))


def test_plot_points_and_losses():
    ax = viz.plot_points_2d({"data": np.ones((4, 2)), "model": np.zeros((3, 1, 2))})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data", "model"]
    plt.close(ax.figure)
    ax = viz.plot_losses({"flow": np.linspace(1, 0.1, 100), "mse": np.linspace(1, 0.3, 100)}, smooth=10)
    assert len(ax.lines) == 2 and len(ax.lines[0].get_xdata()) == 91 and ax.get_yscale() == "log"
    plt.close(ax.figure)


def test_plot_time_histogram_and_embedding():
    t = np.random.default_rng(0).beta(1.5, 1.0, 500)
    ax = viz.plot_time_histogram(t)
    assert len(ax.patches) == 40 and len(ax.lines) == 1 and "noise" in ax.get_xlabel()
    plt.close(ax.figure)
    times = np.linspace(0, 1, 11)
    ax = viz.plot_time_embedding(times, np.zeros((11, 8)), title="emb")
    assert ax.images[0].get_array().shape == (11, 8)
    assert {t.get_text() for t in ax.texts} == {"sin", "cos"} and ax.get_ylabel() == "time t"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="11 rows"):
        viz.plot_time_embedding(times, np.zeros((3, 8)))
