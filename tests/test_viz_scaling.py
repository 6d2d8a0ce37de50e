"""Notebook 12's pictures draw what they are given, and refuse inputs they cannot draw."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from pi0lite.course import viz


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_mesh_labels_every_device_in_place():
    ids = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    ax = viz.plot_mesh(ids)
    try:
        assert sorted(_texts(ax)) == sorted(f"dev {i}" for i in range(8))
        at = {t.get_text(): t.get_position() for t in ax.texts}
        assert at["dev 5"] == (1.5, 2.5)  # column 1 (fsdp), row 2 (data)
        assert "fsdp (size 2)" in ax.get_xlabel() and "data (size 4)" in ax.get_ylabel()
    finally:
        plt.close(ax.figure)


def test_shards_groups_replicas_into_one_block():
    # a (4, 2) mesh, the array split in 2 along axis 0: devices 0,2,4,6 hold the top half
    index_map = {d: (slice(0, 512) if d % 2 == 0 else slice(512, 1024), slice(None)) for d in range(8)}
    ax = viz.plot_shards((1024, 64), index_map)
    try:
        rects = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(rects) == 2
        assert sorted((r.get_y(), r.get_height()) for r in rects) == [(0.0, 0.5), (0.5, 0.5)]
        assert any(t.startswith("dev 0,2,4,6") for t in _texts(ax))
    finally:
        plt.close(ax.figure)


def test_lora_delta_is_the_product():
    rng = np.random.default_rng(0)
    w, a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 2)), rng.normal(size=(2, 5))
    axes = viz.plot_lora(w, a, b, scale=0.5)
    try:
        np.testing.assert_allclose(axes[3].images[0].get_array(), a @ b * 0.5)
        assert "rank 2" in axes[3].get_title()
    finally:
        plt.close(axes[0].figure)


def test_memory_bars_and_gpu_lines():
    ax = viz.plot_memory({"full": {1: 90.0, 8: 12.0}, "lora": {1: 43.0, 8: 6.0}}, gpus={"RTX 4090": 24})
    try:
        heights = sorted(round(p.get_height(), 1) for p in ax.patches)
        assert heights == [6.0, 12.0, 43.0, 90.0]
        assert [line.get_ydata()[0] for line in ax.lines] == [24]
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("call, message", [
    (lambda: viz.plot_mesh(np.arange(8)), "rows, cols"),
    (lambda: viz.plot_shards((8, 4, 2), {}), "2-D"),
    (lambda: viz.plot_lora(np.zeros((4, 3)), np.zeros((3, 2)), np.zeros((2, 3))), "A \\[i, r\\]"),
    (lambda: viz.plot_memory({}), "at least one"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
