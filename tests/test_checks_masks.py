"""Notebook-02 checks accept the package reference and reject realistic wrong implementations."""

import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite.course.checks import check_make_attn_mask, check_pi0_ar_mask, check_predicted_mask
from pi0lite.course.checks.masks import naive_attn_mask
from pi0lite.masks import make_attn_mask, prefix_ar_mask, suffix_ar_mask


def test_oracle_matches_package():
    rng = np.random.default_rng(1)
    for _ in range(5):
        valid = rng.random((3, 9)) < 0.7
        ar = rng.random(9) < 0.5
        assert np.array_equal(naive_attn_mask(valid, ar), np.asarray(make_attn_mask(valid, ar)))


def test_make_attn_mask_accepts_reference(capsys):
    check_make_attn_mask(make_attn_mask)
    assert capsys.readouterr().out.startswith("✓ make_attn_mask")


def _causal_prefix(input_mask, ar_mask):
    return make_attn_mask(input_mask, jnp.ones_like(jnp.asarray(ar_mask)))


def _ignores_padding(input_mask, ar_mask):
    return make_attn_mask(jnp.ones_like(jnp.asarray(input_mask)), ar_mask)


def _keys_only(input_mask, ar_mask):
    c = jnp.cumsum(jnp.asarray(ar_mask, jnp.int32), axis=-1)
    return (c[..., None, :] <= c[..., :, None]) & jnp.asarray(input_mask)[:, None, :]


def _strict(input_mask, ar_mask):
    c = jnp.cumsum(jnp.asarray(ar_mask, jnp.int32), axis=-1)
    m = jnp.asarray(input_mask)
    return (c[..., None, :] < c[..., :, None]) & m[:, None, :] & m[:, :, None]


def _cumsum_over_batch(input_mask, ar_mask):
    m = jnp.asarray(input_mask)
    c = jnp.cumsum(jnp.broadcast_to(jnp.asarray(ar_mask, jnp.int32), m.shape), axis=0)
    return (c[:, None, :] <= c[:, :, None]) & m[:, None, :] & m[:, :, None]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda i, a: jnp.swapaxes(make_attn_mask(i, a), 1, 2), "Did you transpose"),
        (_causal_prefix, "cumsum, not arange"),
        (_ignores_padding, "padding"),
        (_keys_only, "mask its row too"),
        (_strict, "≤, not <"),
        (_cumsum_over_batch, "cumsum along the sequence"),
        (lambda i, a: make_attn_mask(i, a).astype(jnp.int32), "bool array"),
    ],
)
def test_make_attn_mask_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_make_attn_mask(wrong)


def test_predicted_mask():
    ar, valid = np.array([0, 0, 1, 0]), np.array([1, 1, 1, 0], bool)
    right = np.asarray(make_attn_mask(valid[None], ar))[0]
    check_predicted_mask(right.astype(int), ar, valid)
    with pytest.raises(AssertionError, match="transpose"):
        check_predicted_mask(right.T, ar, valid)
    with pytest.raises(AssertionError, match="padding"):
        check_predicted_mask(np.asarray(make_attn_mask(np.ones((1, 4), bool), ar))[0], ar, valid)
    with pytest.raises(AssertionError, match="0/1"):
        check_predicted_mask(right * 2, ar, valid)


def _pi0_ar(i, t, h):
    return np.concatenate([prefix_ar_mask(i + t), suffix_ar_mask(h)])


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda i, t, h: np.concatenate([prefix_ar_mask(i + t), suffix_ar_mask(h, pi05=True)]), "pi0.5"),
        (lambda i, t, h: np.concatenate([prefix_ar_mask(i + t), [True], np.zeros(h, bool)]), "cannot see the noisy"),
        (lambda i, t, h: np.concatenate([np.zeros(i + t, bool), np.ones(h + 1, bool)]), "bidirectionally"),
        (lambda i, t, h: np.concatenate([np.ones(i + t, bool), suffix_ar_mask(h)]), "one bidirectional block"),
    ],
)
def test_pi0_ar_mask(wrong, hint):
    check_pi0_ar_mask(_pi0_ar)
    with pytest.raises(AssertionError, match=hint):
        check_pi0_ar_mask(wrong)
