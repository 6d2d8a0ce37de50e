"""The notebook-04 checks accept correct answers and reject the usual wrong ones."""

import einops
import jax.numpy as jnp
import pytest

from pi0lite import gemma
from pi0lite.course.checks import check_expert_param_count, check_joint_attention
from pi0lite.course.checks.mot import expert_param_count
from pi0lite.config import GEMMA_300M


def _rejects(check, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        check(fn)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def _attend(q, k, v, mask):
    probs = gemma.attention_weights(q * q.shape[-1] ** -0.5, k, mask)  # [b, n, t, s]
    return jnp.einsum("bnts,bsnh->btnh", probs, jnp.repeat(v, q.shape[2] // k.shape[2], axis=2))


def _joint(qs, ks, vs, mask):
    q, packed = einops.pack(qs, "b * n h")
    k, _ = einops.pack(ks, "b * k h")
    v, _ = einops.pack(vs, "b * k h")
    return einops.unpack(_attend(q, k, v, mask), packed, "b * n h")


def test_joint_attention_accepts_pack_unpack_solution(capsys):
    check_joint_attention(_joint)
    assert "✓ joint_attention: 4/4" in capsys.readouterr().out


def test_joint_attention_rejects_separate_attention():
    def separate(qs, ks, vs, mask):
        outs, start = [], 0
        for q, k, v in zip(qs, ks, vs):
            t = q.shape[1]
            outs.append(_attend(q, k, v, mask[:, start : start + t, start : start + t]))
            start += t
        return outs

    _rejects(check_joint_attention, separate, "share ONE attention")


def test_joint_attention_rejects_reversed_order_and_wrong_container():
    def reversed_order(qs, ks, vs, mask):
        return _joint(qs[::-1], ks[::-1], vs[::-1], mask)[::-1]

    _rejects(check_joint_attention, reversed_order, "expert order")
    _rejects(check_joint_attention, lambda *a: jnp.concatenate(_joint(*a), axis=1), "list")


def test_expert_param_count_matches_openpi_gemma_300m():
    assert expert_param_count(GEMMA_300M) == 311_464_960


def _count(cfg, kv=None, gating=2, norms=True):
    d, n, h, f, k = cfg.width, cfg.num_heads, cfg.head_dim, cfg.mlp_dim, cfg.num_kv_heads if kv is None else kv
    layer = n * d * h + 2 * k * d * h + n * h * d + gating * d * f + f * d + (2 * d if norms else 0)
    return cfg.depth * layer + (d if norms else 0)


def test_expert_param_count_accepts_formula(capsys):
    check_expert_param_count(_count)
    assert "✓ expert_param_count: 5/5" in capsys.readouterr().out


def test_expert_param_count_rejects_common_mistakes():
    _rejects(check_expert_param_count, lambda c: _count(c, kv=c.num_heads), "num_kv_heads")
    _rejects(check_expert_param_count, lambda c: _count(c, gating=1), "two input matrices")
    _rejects(check_expert_param_count, lambda c: _count(c, norms=False), "RMSNorm scales")
    _rejects(check_expert_param_count, lambda c: _count(c) - c.width, "final RMSNorm")
    _rejects(check_expert_param_count, lambda c: float(_count(c)), "integer")
