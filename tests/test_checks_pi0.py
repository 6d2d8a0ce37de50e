"""The notebook-06 checks accept correct answers and reject the usual wrong ones."""

import jax.numpy as jnp
import pytest

from pi0lite.course.checks import check_cached_suffix_mask, check_suffix_positions
from pi0lite.masks import make_attn_mask


def _rejects(check, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        check(fn)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def _positions(prefix_mask, suffix_mask):
    return jnp.sum(prefix_mask, -1, keepdims=True) + jnp.cumsum(suffix_mask, -1) - 1


def test_suffix_positions_accepts_solution(capsys):
    check_suffix_positions(_positions)
    assert "✓ suffix_positions: 5/5" in capsys.readouterr().out


def test_suffix_positions_rejects_off_by_one_and_padding_and_restart():
    _rejects(check_suffix_positions, lambda p, s: _positions(p, s) + 1, "count from 0")
    _rejects(check_suffix_positions, lambda p, s: p.shape[1] + jnp.cumsum(s, -1) - 1, "valid* prefix tokens")
    _rejects(check_suffix_positions, lambda p, s: jnp.cumsum(s, -1) - 1, "restart at 0")
    _rejects(check_suffix_positions, lambda p, s: _positions(p, s).astype(jnp.float32), "integer")


def test_suffix_positions_rejects_ignoring_the_suffix_mask():
    arange = lambda p, s: jnp.sum(p, -1, keepdims=True) + jnp.arange(s.shape[1])[None, :]
    _rejects(check_suffix_positions, arange, "padded suffix slot", "not arange(q)")


def _mask(prefix_mask, suffix_mask, suffix_ar, *, ignore_padding=False, causal=False, transpose=False):
    b, q = suffix_mask.shape
    cols = jnp.ones_like(prefix_mask) if ignore_padding else prefix_mask
    prefix_part = jnp.broadcast_to(cols[:, None, :], (b, q, prefix_mask.shape[1]))
    suffix_part = make_attn_mask(suffix_mask, jnp.ones_like(suffix_ar) if causal else suffix_ar)
    if transpose:
        suffix_part = jnp.swapaxes(suffix_part, 1, 2)
    return jnp.concatenate([prefix_part, suffix_part], axis=-1)


def test_cached_suffix_mask_accepts_solution(capsys):
    check_cached_suffix_mask(_mask)
    assert "✓ cached_suffix_mask: 4/4" in capsys.readouterr().out


def test_cached_suffix_mask_rejects_ignored_padding_causal_suffix_and_transpose():
    _rejects(check_cached_suffix_mask, lambda *a: _mask(*a, ignore_padding=True), "padded / missing prefix")
    _rejects(check_cached_suffix_mask, lambda *a: _mask(*a, causal=True), "block rule")
    _rejects(check_cached_suffix_mask, lambda *a: _mask(*a, transpose=True), "transposed")
    _rejects(check_cached_suffix_mask, lambda *a: _mask(*a).astype(jnp.int32), "bool")
