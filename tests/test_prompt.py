"""pi0.5's discrete-state prompt (pi0lite.prompt) against hand-computed strings and openpi's edge values."""

from __future__ import annotations

import numpy as np
import pytest

from pi0lite.prompt import clean_prompt, discretize_state, pi05_prompt, tokenize_pi05


def test_bins_by_hand():
    # bin k covers [-1 + k/128, -1 + (k+1)/128): worked out by hand
    state = np.array([-1.0, -0.99, 0.0, 0.5, 1 - 1e-9, 0.0078125 - 1e-9, 0.0078125])
    np.testing.assert_array_equal(discretize_state(state), [0, 1, 128, 192, 255, 128, 129])


def test_edges_like_openpi():
    """below -1 gives -1 (not 0), >= 1 gives 255 (openpi's digitize(..., linspace(-1, 1, 257)[:-1]) - 1)."""
    np.testing.assert_array_equal(discretize_state(np.array([-1.0001, -5.0, 1.0, 7.0, -np.inf, np.inf])),
                                  [-1, -1, 255, 255, -1, 255])


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        discretize_state(np.array([0.0, np.nan]))


def test_prompt_string_by_hand():
    text = pi05_prompt("  pick_up the\ncup ", np.array([-1.0, 0.0, 0.999, -2.0]))
    assert text == "Task: pick up the cup, State: 0 128 255 -1;\nAction: "


def test_cleaning_keeps_case():
    assert clean_prompt(" Go_to\nthe Red square ") == "Go to the Red square"


class _Chars:
    """A character tokenizer (BOS = 2, pad = 0) as an independent oracle for tokenize_pi05."""

    pad_id, bos_id = 0, 2

    def encode(self, text):
        return [2] + [ord(c) for c in text]


def test_tokenize_pads_and_refuses_too_long():
    ids, mask = tokenize_pi05(_Chars(), ["a", "bb"], np.zeros((2, 1)), 60)
    first = [2] + [ord(c) for c in "Task: a, State: 128;\nAction: "]
    assert ids[0, : len(first)].tolist() == first and mask[0].sum() == len(first)
    assert mask[1].sum() == len(first) + 1 and not ids[0, len(first):].any()
    with pytest.raises(ValueError, match="max_len=10"):
        tokenize_pi05(_Chars(), ["a"], np.zeros((1, 1)), 10)
    with pytest.raises(ValueError, match="state_dim"):
        tokenize_pi05(_Chars(), ["a", "b"], np.zeros((3, 1)), 60)
