"""The mask explorers react to their controls (no browser needed: widgets work headless), under the
installed ipywidgets 8 and under Colab's 7.7.1 (``make test-deps`` puts it in .venv/ipywidgets7).
tests/test_browser_lab.py drives the same explorers in JupyterLab."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from pi0lite.masks import make_attn_mask
from pi0lite.course.widgets import mask_explorer, model_mask_explorer


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


def test_model_explorer_switches_layouts():
    segments = {"a": [("image", 2), ("state", 1), ("actions", 2)], "b": [("image", 2), ("tokens", 3)]}
    ar = {"a": [0, 0, 1, 1, 0], "b": [0, 0, 1, 1, 1]}
    layouts = {name: (segments[name], ar[name], [1, 1, 1, 1, 1]) for name in ("a", "b")}
    ex = model_mask_explorer(layouts)
    assert [b.description for b in ex.explorer.ar_buttons] == ["i0", "i1", "s", "a0", "a1"]
    expected = {name: np.asarray(make_attn_mask(np.ones((1, 5), bool), ar[name]))[0] for name in ar}
    assert np.array_equal(ex.explorer.mask, expected["a"])
    ex.model.value = "b"  # the menu swaps in b's layout and its buttons
    assert np.array_equal(ex.explorer.mask, expected["b"]) and not np.array_equal(expected["a"], expected["b"])
    assert ex.widget.children[1] is ex.explorer.widget
    assert [b.description for b in ex.explorer.ar_buttons] == ["i0", "i1", "t0", "t1", "t2"]
    ex.explorer.valid_buttons[0].value = False  # the controls of the new layout are live
    assert not ex.explorer.mask[0].any()


def test_model_explorer_rejects_inconsistent_layouts():
    with pytest.raises(ValueError, match="segments cover 3 tokens, ar_mask has 2"):
        model_mask_explorer({"pi0": ([("image", 3)], [0, 1], [1, 1])})
    with pytest.raises(ValueError, match="at least one model"):
        model_mask_explorer({})


REPO = pathlib.Path(__file__).resolve().parents[1]
IPYWIDGETS7 = pathlib.Path(os.environ.get("PI0LITE_IPYWIDGETS7", REPO / ".venv" / "ipywidgets7"))
UNDER_7 = """
import ipywidgets, numpy as np
assert ipywidgets.__version__ == "7.7.1", ipywidgets.__file__
from pi0lite.masks import make_attn_mask
from pi0lite.course.widgets import mask_explorer, model_mask_explorer
ex = mask_explorer([0, 0, 1, 0], labels=["img", "txt", "st", "act"])
ex.ar_buttons[3].value = True
assert not ex.mask[2, 3] and ex.mask[3, 2]
ex.valid_buttons[1].value = False
assert not ex.mask[1].any() and not ex.mask[:, 1].any()
layouts = {"a": ([("i", 2), ("s", 1)], [0, 0, 1], [1, 1, 1]), "b": ([("i", 2), ("t", 2)], [0, 0, 1, 1], [1, 1, 1, 1])}
m = model_mask_explorer(layouts)
m.model.value = "b"
assert np.array_equal(m.explorer.mask, np.asarray(make_attn_mask(np.ones((1, 4), bool), [0, 0, 1, 1]))[0])
assert m.widget.children[1] is m.explorer.widget and len(m.explorer.ar_buttons) == 4
print("ok", ipywidgets.__version__)
"""


def test_explorers_under_ipywidgets7():
    """Colab ships ipywidgets 7.7.1: the explorers must build and react under it (core widgets only)."""
    if not (IPYWIDGETS7 / "ipywidgets").is_dir():
        pytest.fail(f"ipywidgets 7.7.1 is missing at {IPYWIDGETS7}: run `make test-deps` (or `pip install --no-deps "
                    f"--target {IPYWIDGETS7} ipywidgets==7.7.1 ipython_genutils==0.2.0`)", pytrace=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(IPYWIDGETS7), str(REPO)]), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", UNDER_7], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and "ok 7.7.1" in result.stdout, result.stderr[-3000:]
