"""Knowledge insulation (KI, Driess et al. 2025): train pi0.5's VLM on FAST tokens, its action expert by flow matching.

Axis letters (legend in :mod:`pi0lite`): b batch · p prefix tokens · o FAST action tokens · q suffix
(action) tokens · t all tokens of a pass · a action steps · j action dims · v vocabulary · l layers ·
k kv heads · h head dim.

One training example is read twice, by the two experts of the same :class:`pi0lite.pi0.Pi0`:

* **VLM pass** (expert 0) over ``[images, prompt (with the discrete state), FAST action tokens]``:
  prefix bidirectional (``ar`` 0), the FAST tokens causal among themselves (``ar`` 1 each), the
  prefix never sees them. Next-token cross-entropy on the FAST tokens only: token ``i`` is
  predicted from the output at FAST slot ``i − 1``, token 0 from the last *valid* prefix slot.
* **Action pass** (expert 1): the flow-matching suffix (exactly :meth:`Pi0.velocity_cached`, as at
  inference) attends to the VLM pass's keys/values **of the prefix only** (never to the FAST
  tokens: they encode the answer) and, with ``insulate=True``, through ``jax.lax.stop_gradient``:
  the flow loss then changes no VLM parameter (embedder, vision tower, VLM layers).

The prefix keys/values do not depend on the FAST tokens (the prefix cannot see them), so the two
passes compute exactly one joint pass with the three-block mask of :func:`ki_attn_mask`
(``tests/test_ki.py`` checks this against a single joint pass). Inference is unchanged:
``Pi0.sample_actions`` fills the cache with images + prompt and never generates FAST tokens.

Loss: ``fast_weight · L_FAST + L_flow`` (``fast_weight`` = 1 by default, i.e. the plain sum of the
paper). ``L_FAST`` is each example's mean cross-entropy over its real FAST tokens, averaged over
the batch; ``L_flow`` is pi0's velocity MSE averaged over batch, steps and dims.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from pi0lite import flow
from pi0lite.masks import make_attn_mask, make_positions
from pi0lite.observation import Observation, concrete_or_none, pad_to_dim, validate_actions, validate_observation
from pi0lite.pi0 import Pi0

__all__ = ["ki_attn_mask", "ki_loss", "module_of", "grad_norms_by_module", "part_grad_norms", "MODULE_GROUPS",
           "VLM_GROUPS"]

#: Parameter groups of a :class:`Pi0`, for gradient pictures: name → what it covers.
MODULE_GROUPS = {
    "vision tower": "PaliGemma/img",
    "embedder": "PaliGemma/llm/embedder",
    "VLM layers": "PaliGemma/llm/experts/0",
    "action-expert layers": "PaliGemma/llm/experts/1",
    "action heads": "action_in_proj, action_out_proj, time / state projections",
}
#: The groups the flow loss must not change under ``insulate=True``.
VLM_GROUPS = ("vision tower", "embedder", "VLM layers")


def module_of(path: tuple) -> str:
    """The :data:`MODULE_GROUPS` name of a parameter path (``('PaliGemma', 'llm', 'experts', 0, ...)``)."""
    p = [str(x) for x in path]
    if p[:2] == ["PaliGemma", "img"]:
        return "vision tower"
    if p[:3] == ["PaliGemma", "llm", "embedder"]:
        return "embedder"
    if p[:3] == ["PaliGemma", "llm", "experts"]:
        return "VLM layers" if p[3] == "0" else "action-expert layers"
    return "action heads"


def grad_norms_by_module(grads) -> dict[str, float]:
    """Global L2 norm of a gradient state (``nnx.State`` of a :class:`Pi0`) per :data:`MODULE_GROUPS` group."""
    sums = {name: 0.0 for name in MODULE_GROUPS}
    for path, leaf in nnx.to_flat_state(grads):
        value = leaf.get_value() if hasattr(leaf, "get_value") else leaf
        sums[module_of(path)] += float(jnp.sum(jnp.square(jnp.asarray(value, jnp.float32))))
    return {name: float(np.sqrt(s)) for name, s in sums.items()}


def ki_attn_mask(
    prefix_mask: Bool[ArrayLike, "b p"], fast_mask: Bool[ArrayLike, "b o"], suffix_mask: Bool[ArrayLike, "b q"],
    suffix_ar: Bool[ArrayLike, "q"],
) -> Bool[Array, "b t t"]:
    """The KI attention mask over ``[prefix; FAST tokens; action tokens]`` (True = may attend).

    openpi's rule (:func:`pi0lite.masks.make_attn_mask`) with ``ar`` = prefix 0, FAST 1 each, then
    the suffix's own ``ar``; then the block "action tokens → FAST tokens" is cut: the action expert
    sees the valid prefix and the action tokens, never the discrete answer.
    """
    prefix_mask, fast_mask, suffix_mask = (jnp.asarray(m, bool) for m in (prefix_mask, fast_mask, suffix_mask))
    p, o = prefix_mask.shape[1], fast_mask.shape[1]
    ar = jnp.concatenate([jnp.zeros((p,), bool), jnp.ones((o,), bool), jnp.asarray(suffix_ar, bool)])
    mask = make_attn_mask(jnp.concatenate([prefix_mask, fast_mask, suffix_mask], axis=1), ar)
    return mask.at[:, p + o :, p : p + o].set(False)


def _check_fast(model: Pi0, fast_tokens, fast_mask, b: int) -> None:
    shapes = (tuple(np.shape(fast_tokens)), tuple(np.shape(fast_mask)))
    if len(shapes[0]) != 2 or shapes[0] != shapes[1] or shapes[0][0] != b:
        raise ValueError(f"fast_tokens and fast_mask must both be [batch={b}, fast slots], got {shapes[0]} and {shapes[1]}")
    ids, mask = concrete_or_none(fast_tokens), concrete_or_none(fast_mask)
    if ids is not None and ids.size and (ids.min() < 0 or ids.max() >= model.config.vocab_size):
        raise ValueError(f"fast_tokens must be model vocabulary ids in [0, {model.config.vocab_size}), "
                         f"got values in [{ids.min()}, {ids.max()}]")
    if mask is not None:
        mask = mask.astype(bool)
        if np.any(mask[:, 1:] & ~mask[:, :-1]):
            raise ValueError("fast_mask must be right-padded (real tokens first, then padding), got a gap")


def ki_loss(
    model: Pi0,
    key: jax.Array,
    obs: Observation,
    actions: Float[ArrayLike, "b a _j"],
    fast_tokens: Int[ArrayLike, "b o"],
    fast_mask: Bool[ArrayLike, "b o"],
    *,
    insulate: bool = True,
    fast_weight: float = 1.0,
    noise: Float[ArrayLike, "b a j"] | None = None,
    time: Float[ArrayLike, "b"] | None = None,
    return_prefix_out: bool = False,
) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
    """KI loss ``fast_weight · fast + flow`` and its parts ``{"flow": ..., "fast": ...}``.

    ``return_prefix_out=True`` adds ``"prefix_out"``, the VLM's output at the prefix tokens
    ``[b, p, d]`` of the same pass (for a VLM-side head such as the toy's grounding head).

    ``fast_tokens`` are model vocabulary ids (e.g. pi0lite's FAST ids mapped by
    :func:`pi0lite.fast.prompt.fast_to_vocab`), ``fast_mask`` marks the real ones (right-padded).
    ``key`` is split as in :meth:`Pi0.compute_loss` (noise, time); ``noise=`` / ``time=`` override.
    ``insulate=False`` lets the flow gradient into the VLM (the ablation of the paper).
    """
    cfg = model.config
    validate_observation(cfg, obs)
    b = obs.batch_size
    validate_actions(cfg, actions, b)
    _check_fast(model, fast_tokens, fast_mask, b)
    actions = pad_to_dim(jnp.asarray(actions, jnp.float32), cfg.action_dim)
    fast_tokens, fast_mask = jnp.asarray(fast_tokens, jnp.int32), jnp.asarray(fast_mask, bool)
    _, noise_key, time_key = jax.random.split(key, 3)  # as Pi0.compute_loss
    noise = jax.random.normal(noise_key, actions.shape) if noise is None else jnp.asarray(noise, jnp.float32)
    time = flow.sample_time(time_key, b) if time is None else jnp.asarray(time, jnp.float32)
    if noise.shape != actions.shape or time.shape != (b,):
        raise ValueError(f"noise must be {actions.shape} and time {(b,)}, got {noise.shape} and {time.shape}")

    # VLM pass: [prefix; FAST tokens], prefix bidirectional, FAST causal
    llm = model.PaliGemma["llm"]
    prefix, prefix_mask, prefix_ar = model.embed_prefix(obs)
    p, o = prefix.shape[1], fast_tokens.shape[1]
    vlm_mask = jnp.concatenate([prefix_mask, fast_mask], axis=1)
    vlm_ar = jnp.concatenate([prefix_ar, jnp.ones((o,), bool)])
    (vlm_out, _), (ks, vs) = llm(
        [jnp.concatenate([prefix, llm.embedder.encode(fast_tokens)], axis=1), None],
        positions=make_positions(vlm_mask), mask=make_attn_mask(vlm_mask, vlm_ar),
    )
    last_prefix = p - 1 - jnp.argmax(prefix_mask[:, ::-1], axis=1)  # [b]: the last valid prefix slot
    readers = jnp.concatenate([last_prefix[:, None], p + jnp.broadcast_to(jnp.arange(o - 1), (b, o - 1))], axis=1)
    hidden = jnp.take_along_axis(vlm_out, readers[:, :, None], axis=1)  # [b, o, d]: the slot before each token
    logp = jax.nn.log_softmax(llm.embedder.decode(hidden).astype(jnp.float32), axis=-1)
    token_logp = jnp.take_along_axis(logp, fast_tokens[:, :, None], axis=-1)[..., 0]  # [b, o]
    weights = fast_mask.astype(jnp.float32)
    fast = jnp.mean(-jnp.sum(token_logp * weights, -1) / jnp.maximum(jnp.sum(weights, -1), 1.0))

    # action pass: the inference suffix against the prefix's keys/values (not the FAST tokens')
    cache = (ks[:, :, :p], vs[:, :, :p])
    if insulate:
        cache = jax.lax.stop_gradient(cache)
    x_t = flow.interpolate(noise, actions, time)
    v_t = model.velocity_cached(obs, cache, prefix_mask, x_t, time)
    flow_loss = jnp.mean(jnp.square(v_t - flow.target_velocity(noise, actions)))
    parts = {"flow": flow_loss, "fast": fast}
    if return_prefix_out:
        parts["prefix_out"] = vlm_out[:, :p]
    return fast_weight * fast + flow_loss, parts


def part_grad_norms(
    model: Pi0,
    key: jax.Array,
    obs: Observation,
    actions: Float[ArrayLike, "b a _j"],
    fast_tokens: Int[ArrayLike, "b o"],
    fast_mask: Bool[ArrayLike, "b o"],
    *,
    part: str,
    insulate: bool = True,
) -> dict[str, float]:
    """Per-module gradient norms (:func:`grad_norms_by_module`) of one loss term, ``part`` = ``"flow"`` or ``"fast"``.

    Under ``insulate=True`` the VLM groups of the ``"flow"`` term are exactly 0; the ``"fast"`` term
    never reaches the action expert. (For pictures; for training use :func:`ki_loss`.)
    """
    if part not in ("flow", "fast"):
        raise ValueError(f"part must be 'flow' or 'fast', got {part!r}")
    grads = _term_grad(part, insulate)(model, key, obs, jnp.asarray(actions), jnp.asarray(fast_tokens),
                                       jnp.asarray(fast_mask))
    return grad_norms_by_module(grads)


@functools.lru_cache(maxsize=None)
def _term_grad(part: str, insulate: bool):
    """The jitted gradient of one KI term (compiled once per term and setting)."""

    def term(m, key, obs, actions, fast_tokens, fast_mask):
        return ki_loss(m, key, obs, actions, fast_tokens, fast_mask, insulate=insulate)[1][part]

    return nnx.jit(nnx.grad(term))
