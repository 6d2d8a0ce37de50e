import numpy as np
import pytest

from pi0lite.masks import MASK_VALUE, make_attn_mask, make_positions, prefix_ar_mask, suffix_ar_mask


def naive_mask(input_mask, ar):
    b, n = input_mask.shape
    out = np.zeros((b, n, n), bool)
    for k in range(b):
        c = np.cumsum(ar[k])
        for i in range(n):
            for j in range(n):
                out[k, i, j] = c[j] <= c[i] and input_mask[k, i] and input_mask[k, j]
    return out


def test_matches_naive_double_loop_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        input_mask = rng.random((2, n)) > 0.2
        ar = rng.random((2, n)) > 0.6
        np.testing.assert_array_equal(np.asarray(make_attn_mask(input_mask, ar)), naive_mask(input_mask, ar))


def test_pi0_prefix_suffix_miniature():
    # 3 prefix tokens + 1 padding slot, then the state token, then 2 action tokens.
    input_mask = np.array([[1, 1, 1, 0, 1, 1, 1]], bool)
    ar = np.concatenate([prefix_ar_mask(4), suffix_ar_mask(2)])
    np.testing.assert_array_equal(ar, [0, 0, 0, 0, 1, 1, 0])
    expected = np.array(
        [
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 1, 0, 0],
            [1, 1, 1, 0, 1, 1, 1],
            [1, 1, 1, 0, 1, 1, 1],
        ],
        bool,
    )
    np.testing.assert_array_equal(np.asarray(make_attn_mask(input_mask, ar))[0], expected)
    np.testing.assert_array_equal(np.asarray(make_positions(input_mask))[0], [0, 1, 2, 2, 3, 4, 5])


def test_pi05_layout_actions_see_each_other_and_prefix():
    ar = np.concatenate([prefix_ar_mask(3), suffix_ar_mask(3, pi05=True)])
    np.testing.assert_array_equal(ar, [0, 0, 0, 1, 0, 0])
    mask = np.asarray(make_attn_mask(np.ones((1, 6), bool), ar))[0]
    assert mask[3:, :].all()  # actions see everything
    assert not mask[:3, 3:].any()  # prefix never sees actions


def test_fast_prefix_lm_layout():
    ar = np.array([0, 0, 0, 1, 1, 1])
    mask = np.asarray(make_attn_mask(np.ones((1, 6), bool), ar))[0]
    np.testing.assert_array_equal(mask[:3, :3], np.ones((3, 3)))
    np.testing.assert_array_equal(mask[3:, 3:], np.tril(np.ones((3, 3))))
    assert not mask[:3, 3:].any()


def test_all_zero_is_bidirectional_all_one_is_causal():
    valid = np.ones((1, 5), bool)
    assert np.asarray(make_attn_mask(valid, np.zeros(5, bool))).all()
    np.testing.assert_array_equal(np.asarray(make_attn_mask(valid, np.ones(5, bool)))[0], np.tril(np.ones((5, 5), bool)))


def test_mask_value_is_finite_and_large():
    assert np.isfinite(MASK_VALUE) and MASK_VALUE < -1e38


def test_bad_rank_is_rejected():
    # ValueError from make_attn_mask itself, TypeError from the jaxtyping hook of tests/conftest.py
    with pytest.raises((ValueError, TypeError), match="input_mask"):
        make_attn_mask(np.ones((5,), bool), np.zeros(5, bool))
