"""pi0lite.attention.attention (softmax division after the values matmul) against a float64 numpy
oracle written from the definition, and its gradient against autodiff of the textbook formula."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite.attention import attend, attention, attention_weights
from pi0lite.masks import MASK_VALUE


def oracle(q, k, v, mask):
    """softmax(q·kᵀ with masked entries at MASK_VALUE)·v per query head, in float64, head i using kv head i // g."""
    q, k, v, mask = (np.asarray(a, np.float64) if a.dtype != bool else np.asarray(a) for a in (q, k, v, mask))
    b, t, n, _ = q.shape
    g = n // k.shape[2]
    out = np.zeros(q.shape)
    probs = np.zeros((b, n, t, k.shape[1]))
    for i in range(n):
        logits = np.einsum("bth,bsh->bts", q[:, :, i], k[:, :, i // g])
        logits = np.where(mask, logits, float(MASK_VALUE))
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        probs[:, i] = p
        out[:, :, i] = np.einsum("bts,bsh->bth", p, v[:, :, i // g])
    return out, probs


def _inputs(seed, b=2, t=5, s=7, n=4, kv=2, h=8):
    kq, kk, kv_, km = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(kq, (b, t, n, h)) * h**-0.5
    k = jax.random.normal(kk, (b, s, kv, h))
    v = jax.random.normal(kv_, (b, s, kv, h))
    mask = jax.random.bernoulli(km, 0.7, (b, t, s)).at[:, :, 0].set(True)
    return q, k, v, mask


@pytest.mark.parametrize("kv", [1, 2, 4])
def test_attention_matches_the_float64_oracle(kv):
    q, k, v, mask = _inputs(0, kv=kv)
    mask = mask.at[1, 3].set(False)  # a fully masked (padding) query row: uniform weights, no NaN
    want_out, want_probs = oracle(q, k, v, mask)
    out, probs = attention(q, k, v, mask, return_probs=True)
    np.testing.assert_allclose(out, want_out, atol=2e-6)
    np.testing.assert_allclose(probs, want_probs, atol=1e-6)
    np.testing.assert_allclose(out[1, 3], np.asarray(v)[1].mean(0).repeat(4 // kv, axis=0), atol=1e-6)
    np.testing.assert_allclose(attention(q, k, v, mask), attend(attention_weights(q, k, mask), v), atol=1e-6)


def test_attention_gradient_matches_the_textbook_formula():
    q, k, v, mask = _inputs(1)
    w = jax.random.normal(jax.random.key(2), q.shape)  # a random linear read-out of the output

    def textbook(q, k, v):  # softmax normalised before the values, written out here
        g = q.shape[2] // k.shape[2]
        kk, vv = jnp.repeat(k, g, axis=2), jnp.repeat(v, g, axis=2)
        logits = jnp.where(mask[:, None], jnp.einsum("btnh,bsnh->bnts", q, kk), MASK_VALUE)
        p = jnp.exp(logits - logits.max(-1, keepdims=True))
        return jnp.sum(w * jnp.einsum("bnts,bsnh->btnh", p / p.sum(-1, keepdims=True), vv))

    ours = jax.grad(lambda q, k, v: jnp.sum(w * attention(q, k, v, mask)), argnums=(0, 1, 2))(q, k, v)
    want = jax.grad(textbook, argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(ours, want):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_attention_keeps_the_value_dtype():
    q, k, v, mask = (a.astype(jnp.bfloat16) if a.dtype != bool else a for a in _inputs(3))
    out = attention(q, k, v, mask)
    assert out.dtype == jnp.bfloat16
    want, _ = oracle(q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32), mask)
    np.testing.assert_allclose(np.asarray(out, np.float32), want, atol=3e-2)


@pytest.mark.parametrize("t, block_logits, blocks",
                         [(12, 2 * 4 * 4 * 7, 3), (13, 2 * 4 * 4 * 7, 4), (5, 10**9, 1), (5, 1, 5)])
def test_blocked_attention_matches_the_oracle_and_its_gradient(t, block_logits, blocks):
    """Query rows in blocks (the last one padded when t does not divide; never more blocks than rows):
    same output as the float64 oracle, same gradients as the textbook formula, and the expected
    number of blocks in the trace."""
    q, k, v, mask = _inputs(4, t=t)
    mask = mask.at[0, t - 1].set(False)  # a padding row in the last block
    out = attention(q, k, v, mask, block_logits=block_logits)
    np.testing.assert_allclose(out, oracle(q, k, v, mask)[0], atol=2e-6)
    w = jax.random.normal(jax.random.key(5), q.shape)
    blocked = jax.grad(lambda q, k, v: jnp.sum(w * attention(q, k, v, mask, block_logits=block_logits)), (0, 1, 2))
    whole = jax.grad(lambda q, k, v: jnp.sum(w * attention(q, k, v, mask, block_logits=10**9)), (0, 1, 2))
    for a, b in zip(blocked(q, k, v), whole(q, k, v)):
        np.testing.assert_allclose(a, b, atol=2e-5)
    jaxpr = str(jax.make_jaxpr(lambda q: attention(q, k, v, mask, block_logits=block_logits))(q))
    assert (f"length={blocks}" in jaxpr) == (blocks > 1)  # lax.map's scan over the blocks


def test_blocking_splits_when_the_logits_exceed_the_bound():
    """OPENPI_DUMMY's prefix (b 2, 8 heads, 816 tokens) in 4 blocks; a suffix step (51 queries) whole."""
    from pi0lite.attention import BLOCK_LOGITS

    assert -(-2 * 8 * 816 * 816 // BLOCK_LOGITS) == 4
    assert 2 * 8 * 51 * 867 <= BLOCK_LOGITS


@pytest.mark.parametrize("bad", [0, -3])
def test_block_bound_must_be_a_positive_int(bad):
    q, k, v, mask = _inputs(6)
    with pytest.raises(ValueError, match="block_logits must be a positive int"):
        attention(q, k, v, mask, block_logits=bad)
