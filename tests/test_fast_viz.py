"""viz.fast: the plots draw what they are given and return their Axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course import viz


def test_plot_dct_coefficients():
    c = np.arange(12.0).reshape(6, 2) - 5
    ax = viz.plot_dct_coefficients(c, max_freq=4, title="t")
    assert ax.images[0].get_array().shape == (4, 2)
    with pytest.raises(ValueError, match="frequency"):
        viz.plot_dct_coefficients(np.zeros(3))
    plt.close("all")


def test_plot_scale_sweep():
    ax = viz.plot_scale_sweep([2, 5, 10], [20, 30, 40], [0.05, 0.03, 0.01], naive=350)
    assert len(ax.get_lines()) == 2  # tokens + naive line (errors live on the twin axis)
    with pytest.raises(ValueError):
        viz.plot_scale_sweep([1, 2], [1], [1, 2])
    plt.close("all")


def test_plot_token_masks():
    m = np.array([1, 1, 1, 1, 0], bool)
    ar = np.array([0, 0, 1, 1, 0], bool)
    ax = viz.plot_token_masks(m, ar, ar, labels=list("abcd") + [""])
    np.testing.assert_array_equal(ax.images[0].get_array(), np.stack([m, ar, ar]))
    with pytest.raises(ValueError, match="labels"):
        viz.plot_token_masks(m, ar, ar, labels=["a"])
    plt.close("all")
