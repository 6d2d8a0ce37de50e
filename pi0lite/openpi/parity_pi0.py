"""Parity of pi0lite's pi0 with a reference file written by openpi (see ../shared/parity).

The reference holds openpi's parameters, inputs (with the noise and time that openpi drew) and
every intermediate output. ``check_pi0`` rebuilds the matching config from the file, loads the
parameters, feeds the inputs and returns ``(name, max abs error, tolerance)`` per output.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from pi0lite import flow
from pi0lite.config import GemmaConfig, Pi0Config, VisionConfig
from pi0lite.masks import make_attn_mask, make_positions
from pi0lite.observation import Observation
from pi0lite.openpi.compare import CannotCheck, Row, compare, params_of, read_meta, require_keys


def _gemma(ref: dict, suffix: str) -> GemmaConfig:
    p = "param/PaliGemma/llm/layers/"
    depth, heads, width, head_dim = ref[p + f"attn/q_einsum{suffix}/w"].shape
    kv_heads = ref[p + f"attn/kv_einsum{suffix}/w"].shape[2]
    mlp_dim = ref[p + f"mlp{suffix}/gating_einsum"].shape[-1]
    return GemmaConfig(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim)


def _vision(ref: dict, image_size: int) -> VisionConfig:
    p = "param/PaliGemma/img/"
    patch, _, _, width = ref[p + "embedding/kernel"].shape
    blk = p + "Transformer/encoderblock/"
    depth, _, heads, _ = ref[blk + "MultiHeadDotProductAttention_0/query/kernel"].shape
    mlp_dim = ref[blk + "MlpBlock_0/Dense_0/kernel"].shape[-1]
    return VisionConfig(image_size=image_size, patch_size=patch, width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads)


def reference_sizes(ref: dict) -> dict:
    """Config fields every reference file shares: sizes from the parameter shapes, rest from meta."""
    meta = read_meta(ref)
    cameras = tuple(meta["camera_order"])
    return dict(
        action_dim=int(ref["meta/action_dim"]),
        action_horizon=int(ref["meta/action_horizon"]),
        max_token_len=int(ref["meta/max_token_len"]),
        vocab_size=ref["param/PaliGemma/llm/embedder/input_embedding"].shape[0],
        image_keys=cameras,
        paligemma=_gemma(ref, ""),
        vision=_vision(ref, ref[f"in/image_u8/{cameras[0]}"].shape[1]),
        dtype=meta["config"].get("dtype", "float32"),
    )


def config_from_reference(ref: dict) -> Pi0Config:
    """The ``Pi0Config`` matching a pi0 or pi0.5 reference file."""
    meta = read_meta(ref)
    return Pi0Config(
        **reference_sizes(ref), action_expert=_gemma(ref, "_1"), pi05=bool(meta["config"].get("pi05", False))
    )


def observation_from_reference(ref: dict, cameras) -> Observation:
    return Observation.from_numpy(
        images={c: ref[f"in/image_u8/{c}"] for c in cameras},  # uint8 → x/255·2 − 1, as openpi
        image_masks={c: ref[f"in/image_mask/{c}"] for c in cameras},
        state=ref["in/state"],
        tokenized_prompt=ref["in/tokenized_prompt"],
        tokenized_prompt_mask=ref["in/tokenized_prompt_mask"],
    )


OUTPUTS = (
    "prefix_mask", "prefix_ar_mask", "suffix_tokens", "suffix_mask", "suffix_ar_mask",
    "attn_mask", "positions", "x_t", "u_t", "suffix_out", "v_t", "loss", "sample_actions",
)
INPUTS = ("in/state", "in/tokenized_prompt", "in/tokenized_prompt_mask", "in/actions", "in/noise", "in/time", "in/sample_noise")


@nnx.jit
def _loss_pass(model, obs, actions, noise, time):
    """Every intermediate of openpi's compute_loss, each taken from the package's own code.

    ``x_t`` and ``u_t`` come from :mod:`pi0lite.flow`; the embeddings, masks, the action
    expert's output ``suffix_out`` and ``v_t`` are what one ``Pi0.forward`` call computed
    (recorded with ``nnx.capture(..., method_outputs=...)``, which sows every method's output).
    """
    x_t = flow.interpolate(noise, actions, time)
    u_t = flow.target_velocity(noise, actions)
    forward = nnx.capture(model.forward, nnx.Intermediate, method_outputs=nnx.Intermediate)
    (v_t, _), inter = forward(obs, x_t, time)
    prefix, prefix_mask, prefix_ar = inter["embed_prefix"][0]
    suffix, suffix_mask, suffix_ar = inter["embed_suffix"][0]
    (_, suffix_out), _ = inter["PaliGemma"]["llm"]["__call__"][0]
    cond = inter["adarms_cond"][0]
    input_mask = jnp.concatenate([prefix_mask, suffix_mask], axis=1)
    loss = model.compute_loss(jax.random.key(0), obs, actions, noise=noise, time=time)
    extra = {} if cond is None else {"adarms_cond": cond}
    return extra | dict(
        prefix_tokens=prefix, prefix_mask=prefix_mask, prefix_ar_mask=prefix_ar,
        suffix_tokens=suffix, suffix_mask=suffix_mask, suffix_ar_mask=suffix_ar,
        attn_mask=make_attn_mask(input_mask, jnp.concatenate([prefix_ar, suffix_ar])),
        positions=make_positions(input_mask), x_t=x_t, u_t=u_t,
        suffix_out=suffix_out, v_t=v_t, loss=loss,
    )


@nnx.jit(static_argnames=("num_steps", "use_cache"))
def _sample(model, obs, noise, num_steps=10, use_cache=True):
    return model.sample_actions(jax.random.key(0), obs, num_steps=num_steps, noise=noise, use_cache=use_cache)


def build_reference_model(ref: dict):
    """(model with the file's parameters loaded, observation) for a pi0 reference file."""
    from pi0lite.openpi import load_params
    from pi0lite.pi0 import Pi0

    cfg = config_from_reference(ref)
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    load_params(model, params_of(ref))
    return model, observation_from_reference(ref, cfg.image_keys)


def required_keys(ref: dict) -> list[str]:
    """Keys a pi0 / pi0.5 reference file must hold before the model is built."""
    meta = read_meta(ref)
    cameras = meta.get("camera_order")
    if not isinstance(cameras, list) or not cameras:
        raise CannotCheck("'meta/json' has no 'camera_order' list")
    pi05 = bool(meta.get("config", {}).get("pi05", False))
    images = [f"in/{kind}/{c}" for c in cameras for kind in ("image_u8", "image_mask")]
    outputs = [f"out/{n}" for n in OUTPUTS]
    outputs += ["out/prefix_tokens_sel", "out/prefix_tokens_sel_index", "out/adarms_cond"] if pi05 else ["out/prefix_tokens"]
    return ["meta/action_dim", "meta/action_horizon", "meta/max_token_len", *images, *INPUTS, *outputs]


def check_pi0(ref: dict) -> list[Row]:
    """pi0 and pi0.5 reference files (pi0.5's stores a subset of the prefix tokens)."""
    require_keys(ref, required_keys(ref))
    model, obs = build_reference_model(ref)
    ours = _loss_pass(model, obs, jnp.asarray(ref["in/actions"]), jnp.asarray(ref["in/noise"]), jnp.asarray(ref["in/time"]))
    ours["sample_actions"] = _sample(model, obs, jnp.asarray(ref["in/sample_noise"]), num_steps=int(read_meta(ref).get("num_steps", 10)))
    if "out/prefix_tokens_sel" in ref:  # pi0.5 file: every 4th image token and all text tokens
        ours["prefix_tokens_sel"] = ours.pop("prefix_tokens")[:, ref["out/prefix_tokens_sel_index"]]
    return compare(ours, ref)
