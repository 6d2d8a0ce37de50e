"""Knowledge insulation (pi0lite.ki): the mask, the loss against one joint pass, and where the gradients go.

Oracles: a hand-drawn mask; one joint two-expert pass with that mask (built here from Gemma's own
call, not from ki.py); pi0.5's own ``compute_loss`` (the action expert never sees the FAST tokens,
so KI's flow term must equal it exactly); gradients read per parameter.
"""

from __future__ import annotations

import functools
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import TINY
from pi0lite.ki import VLM_GROUPS, grad_norms_by_module, ki_attn_mask, ki_loss, module_of, part_grad_norms
from pi0lite.masks import make_positions
from pi0lite.pi0 import Observation, Pi0

JIT_KI_LOSS = nnx.jit(ki_loss, static_argnames=("insulate", "fast_weight"))
CFG = TINY.replace(pi05=True, vocab_size=64, max_token_len=8)
B, O = 2, 5


def perturb_zeros(model: Pi0, scale: float = 0.3) -> Pi0:
    """Re-draw every all-zero parameter (adaRMS Dense, SigLIP head, norm scales): at init the adaRMS
    gates are 0, which would switch the action expert off and hide where gradients go."""
    state = nnx.state(model, nnx.Param)
    flat = nnx.to_flat_state(state)
    for i, (path, leaf) in enumerate(flat):
        v = leaf.get_value()
        if not np.any(np.asarray(v)):
            leaf.set_value(scale * jax.random.normal(jax.random.key(1000 + i), v.shape, v.dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


@pytest.fixture(scope="module")
def model():
    return perturb_zeros(Pi0(CFG, rngs=nnx.Rngs(0)))


def batch(seed=0):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(3, 40, (B, CFG.max_token_len))
    prompt[1, 5:] = 0  # example 1: a shorter prompt
    obs = Observation.from_numpy(
        images={"base_0_rgb": rng.uniform(-1, 1, (B, 32, 32, 3)).astype(np.float32)},
        state=rng.normal(size=(B, 4)).astype(np.float32), tokenized_prompt=prompt, tokenized_prompt_mask=prompt != 0,
    )
    actions = rng.normal(size=(B, CFG.action_horizon, 2)).astype(np.float32)
    fast = rng.integers(40, CFG.vocab_size, (B, O)).astype(np.int32)
    fast_mask = np.ones((B, O), bool)
    fast_mask[0, 3:] = False  # example 0: 3 FAST tokens, example 1: 5
    noise = rng.normal(size=(B, CFG.action_horizon, CFG.action_dim)).astype(np.float32)
    time = np.array([0.3, 0.8], np.float32)
    return obs, actions, fast, fast_mask, noise, time


def test_mask_matches_hand_drawn_case():
    """prefix p0 p1 + padding slot, FAST f0 f1 (+ a padding slot), actions a0 a1 (pi0.5: ar [1, 0])."""
    m = lambda *rows: np.array(rows, bool)
    got = np.asarray(ki_attn_mask(m([1, 1, 0]), m([1, 1, 0]), m([1, 1]), np.array([1, 0], bool)))[0].astype(int)
    #                 p0 p1 pad f0 f1 fpad a0 a1
    expected = np.array([
        [1, 1, 0, 0, 0, 0, 0, 0],  # p0: the prefix, bidirectional
        [1, 1, 0, 0, 0, 0, 0, 0],  # p1
        [0, 0, 0, 0, 0, 0, 0, 0],  # prefix padding sees nothing
        [1, 1, 0, 1, 0, 0, 0, 0],  # f0: prefix + itself
        [1, 1, 0, 1, 1, 0, 0, 0],  # f1: prefix + f0 + itself (causal)
        [0, 0, 0, 0, 0, 0, 0, 0],  # FAST padding
        [1, 1, 0, 0, 0, 0, 1, 1],  # a0: prefix and the actions, never the FAST tokens
        [1, 1, 0, 0, 0, 0, 1, 1],  # a1
    ])
    np.testing.assert_array_equal(got, expected)


def joint_pass(model: Pi0, obs, actions, fast, fast_mask, noise, time):
    """One pass of both experts over [prefix; FAST; actions] with the hand-checked mask (the oracle)."""
    llm = model.PaliGemma["llm"]
    prefix, prefix_mask, _ = model.embed_prefix(obs)
    actions = jnp.pad(jnp.asarray(actions), ((0, 0), (0, 0), (0, CFG.action_dim - actions.shape[-1])))
    x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * actions
    suffix, suffix_mask, suffix_ar = model.embed_suffix(obs, x_t, jnp.asarray(time))
    n_prefix = jnp.sum(prefix_mask, -1, keepdims=True)
    positions = jnp.concatenate([make_positions(prefix_mask), n_prefix + make_positions(fast_mask),
                                 n_prefix + make_positions(suffix_mask)], axis=1)
    mask = ki_attn_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar)
    vlm_in = jnp.concatenate([prefix, llm.embedder.encode(jnp.asarray(fast))], axis=1)
    (vlm_out, suffix_out), _ = nnx.jit(lambda g, xs, pos, m, c: g(xs, positions=pos, mask=m, adarms_cond=c))(
        llm, [vlm_in, suffix], positions, mask, [None, model.adarms_cond(jnp.asarray(time))])
    v_t = model.action_out_proj(suffix_out)
    flow_loss = np.mean((np.asarray(v_t) - (noise - np.asarray(actions))) ** 2)
    logp = np.asarray(jax.nn.log_softmax(llm.embedder.decode(vlm_out), axis=-1))
    p = prefix.shape[1]
    fast_losses = []
    for b in range(B):
        last = int(np.nonzero(np.asarray(prefix_mask[b]))[0][-1])
        readers = [last] + [p + i for i in range(O - 1)]
        n = int(fast_mask[b].sum())
        fast_losses.append(-np.mean([logp[b, readers[i], fast[b, i]] for i in range(n)]))
    return flow_loss, float(np.mean(fast_losses))


@pytest.mark.parametrize("insulate", [True, False])
def test_loss_equals_one_joint_pass_and_pi05_compute_loss(model, insulate):
    obs, actions, fast, fast_mask, noise, time = batch()
    jitted = JIT_KI_LOSS
    loss, parts = jitted(model, jax.random.key(0), obs, actions, fast, fast_mask, insulate=insulate,
                         noise=noise, time=time)
    flow_ref, fast_ref = joint_pass(model, obs, actions, fast, fast_mask, noise, time)
    np.testing.assert_allclose(float(parts["flow"]), flow_ref, rtol=1e-5)
    np.testing.assert_allclose(float(parts["fast"]), fast_ref, rtol=1e-5)
    plain = nnx.jit(lambda m: m.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time))(model)
    np.testing.assert_allclose(float(parts["flow"]), float(jnp.mean(plain)), rtol=1e-5)
    np.testing.assert_allclose(float(loss), flow_ref + fast_ref, rtol=1e-5)
    weighted, _ = jitted(model, jax.random.key(0), obs, actions, fast, fast_mask, insulate=insulate,
                          fast_weight=0.25, noise=noise, time=time)
    np.testing.assert_allclose(float(weighted), flow_ref + 0.25 * fast_ref, rtol=1e-5)


def test_key_draws_noise_and_time_like_compute_loss(model):
    obs, actions, fast, fast_mask, _, _ = batch()
    _, parts = JIT_KI_LOSS(model, jax.random.key(7), obs, actions, fast, fast_mask)
    plain = nnx.jit(lambda m: m.compute_loss(jax.random.key(7), obs, actions))(model)
    np.testing.assert_allclose(float(parts["flow"]), float(jnp.mean(plain)), rtol=1e-5)


@functools.lru_cache(maxsize=None)
def _grad_fn(part: str, insulate: bool):
    def f(m, obs, actions, fast, fast_mask, noise, time):
        return ki_loss(m, jax.random.key(0), obs, actions, fast, fast_mask, insulate=insulate, noise=noise,
                       time=time)[1][part]

    return nnx.jit(nnx.grad(f))


_GRADS: dict = {}


def part_grads(model, part: str, insulate: bool):
    """Gradient of one loss part w.r.t. every parameter (jitted, computed once per case)."""
    if (part, insulate) not in _GRADS:
        _GRADS[part, insulate] = _grad_fn(part, insulate)(model, *batch())
    return _GRADS[part, insulate]


def leaves_by_group(grads) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for path, leaf in nnx.to_flat_state(grads):
        out.setdefault(module_of(path), []).append(np.asarray(leaf.get_value()))
    return out


def test_insulated_flow_gradient_is_exactly_zero_on_the_vlm(model):
    groups = leaves_by_group(part_grads(model, "flow", insulate=True))
    for name in VLM_GROUPS:
        assert all(not np.any(g) for g in groups[name]), f"flow gradient reaches {name} under insulate=True"
    for name in ("action-expert layers", "action heads"):
        assert any(np.any(g) for g in groups[name]), f"flow gradient does not reach {name}"
    norms = grad_norms_by_module(part_grads(model, "flow", insulate=True))
    assert all(norms[n] == 0.0 for n in VLM_GROUPS) and norms["action-expert layers"] > 0


def test_without_insulation_the_flow_gradient_reaches_the_vlm(model):
    groups = leaves_by_group(part_grads(model, "flow", insulate=False))
    for name in VLM_GROUPS:
        assert any(np.any(g) for g in groups[name]), f"flow gradient should reach {name} under insulate=False"


@pytest.mark.parametrize("insulate", [True, False])
def test_fast_gradient_never_reaches_the_action_expert(model, insulate):
    groups = leaves_by_group(part_grads(model, "fast", insulate=insulate))
    for name in ("action-expert layers", "action heads"):
        assert all(not np.any(g) for g in groups[name]), f"FAST gradient reaches {name}"
    for name in VLM_GROUPS:
        assert any(np.any(g) for g in groups[name]), f"FAST gradient should train {name}"


def test_part_grad_norms_matches_the_gradients(model):
    obs, actions, fast, fast_mask, noise, time = batch()
    norms = part_grad_norms(model, jax.random.key(0), obs, actions, fast, fast_mask, part="fast", insulate=True)
    by_hand = {name: float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in leaves)))
               for name, leaves in leaves_by_group(part_grads(model, "fast", insulate=True)).items()}
    for name, value in by_hand.items():
        np.testing.assert_allclose(norms[name], value, rtol=1e-4, atol=1e-12)
    with pytest.raises(ValueError, match="part"):
        part_grad_norms(model, jax.random.key(0), obs, actions, fast, fast_mask, part="aux")


def test_module_of_names_every_group():
    assert module_of(("PaliGemma", "img", "head", "kernel")) == "vision tower"
    assert module_of(("PaliGemma", "llm", "embedder", "input_embedding")) == "embedder"
    assert module_of(("PaliGemma", "llm", "experts", 0, "mlp", "linear")) == "VLM layers"
    assert module_of(("PaliGemma", "llm", "experts", 1, "mlp", "linear")) == "action-expert layers"
    assert module_of(("time_mlp_in", "kernel")) == "action heads"


def test_bad_fast_inputs_are_named(model):
    obs, actions, fast, fast_mask, _, _ = batch()
    with pytest.raises((ValueError, TypeError), match="fast_tokens and fast_mask|fast_mask"):  # the type hook may answer first
        ki_loss(model, jax.random.key(0), obs, actions, fast[:, :3], fast_mask)
    with pytest.raises(ValueError, match="vocabulary ids"):
        ki_loss(model, jax.random.key(0), obs, actions, fast + CFG.vocab_size, fast_mask)
    gap = fast_mask.copy()
    gap[1, 1] = False
    with pytest.raises(ValueError, match="right-padded"):
        ki_loss(model, jax.random.key(0), obs, actions, fast, gap)


def test_pi0_too_flow_term_is_compute_loss_and_insulated():
    """KI applies to pi0 as well (state token in the suffix): same flow term, same insulation."""
    pi0 = perturb_zeros(Pi0(CFG.replace(pi05=False), rngs=nnx.Rngs(1)))
    obs, actions, fast, fast_mask, noise, time = batch()
    _, parts = JIT_KI_LOSS(pi0, jax.random.key(0), obs, actions, fast, fast_mask, noise=noise, time=time)
    plain = nnx.jit(lambda m: m.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time))(pi0)
    np.testing.assert_allclose(float(parts["flow"]), float(jnp.mean(plain)), rtol=1e-5)
    norms = part_grad_norms(pi0, jax.random.key(0), obs, actions, fast, fast_mask, part="flow", insulate=True)
    assert all(norms[n] == 0.0 for n in VLM_GROUPS) and norms["action-expert layers"] > 0
