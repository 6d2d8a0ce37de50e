"""The mask explorer reacts to its toggles (no browser needed: widgets work headless)."""

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from pi0lite.masks import make_attn_mask
from pi0lite.course.widgets import mask_explorer


def test_explorer_follows_toggles():
    ex = mask_explorer([0, 0, 1, 0], labels=["img", "txt", "st", "act"])
    assert np.array_equal(ex.mask, np.asarray(make_attn_mask(np.ones((1, 4), bool), [0, 0, 1, 0]))[0])
    ex.ar_buttons[3].value = True  # the action opens its own block: causal at the end
    assert not ex.mask[2, 3] and ex.mask[3, 2]
    ex.valid_buttons[1].value = False  # pad the text token: its row and column go dark
    assert not ex.mask[1].any() and not ex.mask[:, 1].any()
    fig = ex.figure()
    assert fig.axes[0].images[0].get_array().shape == (4, 4)
    assert "block ids" in fig.axes[0].get_title()


def test_explorer_rejects_bad_shapes():
    with pytest.raises(ValueError, match="labels must have 3"):
        mask_explorer([0, 1, 0], labels=["a"])
    with pytest.raises(ValueError, match="input_mask"):
        mask_explorer([0, 1, 0], [1, 1])
