"""Smoke tests: action-chunk and denoising-trajectory plots return their Axes with data and labels."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course.viz import plot_action_chunk, plot_denoising_trajectory


def test_plot_action_chunk_lines_and_reference():
    actions = np.random.default_rng(0).standard_normal((8, 3))
    fig, ax = plt.subplots()
    out = plot_action_chunk(actions, reference=actions * 0.5, labels=["x", "y", "grip"], ax=ax, title="chunk")
    assert out is ax
    assert len(ax.lines) == 6
    np.testing.assert_allclose(ax.lines[0].get_ydata(), actions[:, 0], rtol=1e-6)
    assert ax.get_xlabel() == "step in the chunk" and ax.get_title() == "chunk"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "y", "grip"]
    plt.close(fig)


def test_plot_action_chunk_rejects_bad_shapes():
    with pytest.raises(ValueError, match="horizon, dims"):
        plot_action_chunk(np.zeros(5))
    with pytest.raises(ValueError, match="labels"):
        plot_action_chunk(np.zeros((5, 2)), labels=["a"])


def test_plot_denoising_trajectory_one_line_per_state():
    traj = np.random.default_rng(1).standard_normal((11, 8, 2))
    ax = plot_denoising_trajectory(traj, dim=1)
    assert len(ax.lines) == 11
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), traj[-1, :, 1], rtol=1e-6)
    assert ax.lines[-1].get_linewidth() > ax.lines[0].get_linewidth()
    assert ax.get_ylabel() == "action dim 1" and "10 Euler steps" in ax.get_title()
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="dim must be"):
        plot_denoising_trajectory(traj, dim=2)
