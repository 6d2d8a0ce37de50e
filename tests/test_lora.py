"""LoRA as openpi does it: names and shapes, zero-B identity, merged = factored, freeze filter, counts."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from pi0lite import lora
from pi0lite.config import OPENPI_DUMMY, PI0, lora_variant
from pi0lite.openpi import flatten_params, load_params
from pi0lite.pi0 import Observation, Pi0

SMALL_LORA = lora_variant(OPENPI_DUMMY, rank=4, alpha=8.0)  # scaling alpha / rank = 2


def test_presets_match_openpi():
    cfg = lora_variant(PI0)
    assert (cfg.paligemma.lora_rank, cfg.paligemma.lora_alpha) == (16, 16.0)  # gemma_2b_lora
    assert (cfg.action_expert.lora_rank, cfg.action_expert.lora_alpha) == (32, 32.0)  # gemma_300m_lora


def test_openpi_names_and_shapes():
    """Shapes from openpi's parameter tree (reference §9): q_einsum/lora_a (18,8,2048,16), lora_b (18,8,16,256)."""
    model = nnx.eval_shape(lambda: Pi0(lora_variant(PI0), rngs=nnx.Rngs(0)))
    flat = {"/".join(map(str, p)): v for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    from pi0lite.openpi.io import to_openpi_path

    shapes = {to_openpi_path(k): tuple(v.get_value().shape) for k, v in flat.items()}
    llm = "PaliGemma/llm/layers/"
    assert shapes[llm + "attn/q_einsum/lora_a"] == (18, 8, 2048, 16)
    assert shapes[llm + "attn/q_einsum/lora_b"] == (18, 8, 16, 256)
    assert shapes[llm + "attn/kv_einsum_1/lora_a"] == (18, 2, 1, 1024, 32)
    assert shapes[llm + "attn/attn_vec_einsum_1/lora_b"] == (18, 8, 32, 1024)
    assert shapes[llm + "mlp/gating_einsum_lora_a"] == (18, 2, 2048, 16)
    assert shapes[llm + "mlp_1/linear_lora_b"] == (18, 32, 1024)
    # openpi's measured total for pi0 with gemma_2b_lora + gemma_300m_lora
    assert sum(int(np.prod(s)) for s in shapes.values()) == 3_288_036_112


def test_trainable_count_by_hand():
    """Trainable = SigLIP + action heads + every LoRA factor (openpi's freeze filter).

    Per layer, Gemma-2B (d 2048, f 16384, n 8, k 1, h 256, r 16):
      q  8·2048·16 + 8·16·256 = 294,912       kv  2·2048·16 + 2·16·256 = 73,728
      out 8·256·16 + 8·16·2048 = 294,912      gating 2·2048·16 + 2·16·16384 = 589,824
      linear 16384·16 + 16·2048 = 294,912     → 1,548,288 × 18 = 27,869,184
    Gemma-300M (d 1024, f 4096, r 32):
      q 327,680 · kv 81,920 · out 327,680 · gating 327,680 · linear 163,840 → 1,228,800 × 18 = 22,118,400
    SigLIP So400m 414,803,696 and pi0's heads 3,248,160 (openpi's measured counts, reference §9).
    Total: 414,803,696 + 3,248,160 + 27,869,184 + 22,118,400 = 468,039,440.
    """
    cfg = lora_variant(PI0)
    model = nnx.eval_shape(lambda: Pi0(cfg, rngs=nnx.Rngs(0)))
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, lora.trainable_filter(cfg))))
    assert count == 468_039_440


@pytest.mark.parametrize("pg, ax, frozen", [(True, False, 9), (False, True, 8), (True, True, 17)])
def test_freeze_filter_counts_like_openpi(pg, ax, frozen):
    """openpi's pi0_test counts 9, 8 and 17 frozen arrays for the three LoRA combinations."""
    cfg = lora_variant(OPENPI_DUMMY, paligemma=pg, action_expert=ax)
    model = nnx.eval_shape(lambda: Pi0(cfg, rngs=nnx.Rngs(0)))
    trainable = nnx.state(model, lora.trainable_filter(cfg))
    all_params = nnx.state(model, nnx.Param)
    assert len(jax.tree.leaves(all_params)) - len(jax.tree.leaves(trainable)) == frozen


def _obs(cfg, b=2, seed=0):
    rng = np.random.default_rng(seed)
    s = cfg.vision.image_size
    images = {k: rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32) for k in cfg.image_keys}
    ids = rng.integers(1, cfg.vocab_size, (b, 10))
    return Observation.from_numpy(images, rng.standard_normal((b, 8)).astype(np.float32), ids)


def _copy_base(base: Pi0, cfg) -> Pi0:
    """A LoRA model whose frozen weights are ``base``'s (the LoRA factors keep their init)."""
    model = Pi0(cfg, rngs=nnx.Rngs(1))
    flat = flatten_params(model)
    flat.update(flatten_params(base))
    return load_params(model, flat)


def _velocity(model, obs):
    cfg = model.config
    x_t = jax.random.normal(jax.random.key(3), (obs.batch_size, cfg.action_horizon, cfg.action_dim))
    return model.forward(obs, x_t, jnp.array([0.3, 0.8]))[0]


def test_zero_lora_b_is_the_base_model():
    base = Pi0(OPENPI_DUMMY, rngs=nnx.Rngs(0))
    model = _copy_base(base, SMALL_LORA)
    flat = flatten_params(model)
    n_b = 0
    for k in flat:
        if k.endswith("lora_b"):
            flat[k] = np.zeros_like(flat[k])
            n_b += 1
    assert n_b == 2 * 5  # 3 attention einsums + 2 feed-forward weights, per expert
    load_params(model, flat)
    obs = _obs(OPENPI_DUMMY)
    assert np.array_equal(_velocity(model, obs), _velocity(base, obs))
    fresh = _copy_base(base, SMALL_LORA)  # openpi's init: B ~ N(0, 0.01), so not the base model
    assert not np.allclose(_velocity(fresh, obs), _velocity(base, obs), atol=1e-6)


def test_merged_weights_equal_the_lora_path():
    model = _copy_base(Pi0(OPENPI_DUMMY, rngs=nnx.Rngs(0)), SMALL_LORA)
    flat = flatten_params(model)
    for k in flat:  # make the low-rank update large enough to matter
        if "lora" in k:
            flat[k] = flat[k] * 10
    load_params(model, flat)
    merged = {}
    for k, w in flat.items():
        if "lora" in k:
            continue
        name = re.sub(r"_\d+$", "", k.split("/")[-2] if k.endswith("/w") else k.split("/")[-1])
        a_key = k[: -len("/w")] + "/lora_a" if k.endswith("/w") else k + "_lora_a"
        if a_key in flat:
            b_key = a_key[: -len("a")] + "b"
            w = lora.merged_weight(name, w, flat[a_key], flat[b_key], lora.scaling(name, 4, 8.0))
        merged[k] = np.asarray(w)
    dense = load_params(Pi0(OPENPI_DUMMY, rngs=nnx.Rngs(2)), merged)
    obs = _obs(OPENPI_DUMMY)
    v_lora, v_dense, v_base = _velocity(model, obs), _velocity(dense, obs), _velocity(
        load_params(Pi0(OPENPI_DUMMY, rngs=nnx.Rngs(2)), {k: v for k, v in flat.items() if "lora" not in k}), obs)
    assert np.max(np.abs(v_lora - v_base)) > 1e-2  # the LoRA path really changes the output
    np.testing.assert_allclose(v_dense, v_lora, atol=2e-5, rtol=1e-4)


def test_optimizer_state_only_for_trainable():
    cfg = SMALL_LORA
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=lora.trainable_filter(cfg))
    n_trainable = len(jax.tree.leaves(nnx.state(model, lora.trainable_filter(cfg))))
    mu = [x for p, x in jax.tree_util.tree_leaves_with_path(nnx.state(opt)) if "mu" in jax.tree_util.keystr(p)]
    assert len(mu) == n_trainable < len(jax.tree.leaves(nnx.state(model, nnx.Param)))
