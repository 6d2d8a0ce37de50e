"""Parity of pi0lite's pi0-FAST with a reference file written by openpi (``model: "fast"``).

``check_pi0fast`` rebuilds the config from the parameter shapes, loads openpi's parameters,
feeds the stored inputs and returns ``(name, max abs error, tolerance)`` per output: the
embedded inputs and masks, the pre-logits, target log-probs and loss of ``compute_loss``, the
prefill of sampling, and the greedy tokens. openpi decoded with positions one higher than
training (its known off-by-one), so the tokens are generated with ``openpi_positions=True``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from pi0lite.masks import make_attn_mask
from pi0lite.openpi.compare import CannotCheck, Row, compare, params_of, read_meta, require_keys
from pi0lite.openpi.parity_pi0 import reference_sizes
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig

OUTPUTS = (
    "input_tokens", "input_mask", "input_ar_mask", "attn_mask", "pre_logits", "target_logp", "logits_argmax",
    "loss", "sample_input_tokens_mask", "sample_aligned_input_mask", "sample_prefill_positions",
    "sample_prefill_last_logits", "output_tokens",
)
TOKENS = ("tokenized_prompt", "tokenized_prompt_mask", "token_ar_mask", "token_loss_mask")


def config_from_reference(ref: dict) -> Pi0FastConfig:
    special = read_meta(ref).get("special_tokens", {})
    return Pi0FastConfig(
        **reference_sizes(ref), eos_id=int(special.get("EOS", 1)), pad_id=int(special.get("PAD", 0))
    )


def observation_from_reference(ref: dict, cameras, prefix: str = "in/") -> FastObservation:
    tokens = {k: ref[prefix + k] for k in ("tokenized_prompt", "tokenized_prompt_mask", "token_ar_mask", "token_loss_mask")}
    return FastObservation.from_tokens(
        {c: ref[f"in/image_u8/{c}"] for c in cameras}, ref["in/state"], tokens,
        image_masks={c: ref[f"in/image_mask/{c}"] for c in cameras},
    )


def build_reference_model(ref: dict) -> tuple[Pi0Fast, FastObservation, FastObservation]:
    """(model with the file's parameters, training observation, prefix-only sampling observation)."""
    from pi0lite.openpi import load_params

    cfg = config_from_reference(ref)
    model = Pi0Fast(cfg, rngs=nnx.Rngs(0))
    load_params(model, params_of(ref))
    return model, observation_from_reference(ref, cfg.image_keys), observation_from_reference(ref, cfg.image_keys, "in/sample/")


@nnx.jit
def _loss_pass(model, obs):
    tokens, input_mask, ar = model.embed_inputs(obs)
    target, logp = model.token_logp(obs)
    return dict(
        input_tokens=tokens, input_mask=input_mask, input_ar_mask=ar,
        attn_mask=make_attn_mask(input_mask, ar), pre_logits=model.pre_logits(obs), target_logp=target,
        logits_argmax=jnp.argmax(logp, -1), loss=model.compute_loss(None, obs),
    )


@nnx.jit
def _prefill_pass(model, obs):
    from pi0lite.fast.decode import align_prompt, prefill
    from pi0lite.masks import make_positions

    _, mask, _ = align_prompt(model, obs)
    logits, _, _ = prefill(model, obs, 1)
    raw = model.embed_inputs(obs)[1]
    return dict(
        sample_input_tokens_mask=raw, sample_aligned_input_mask=mask,
        sample_prefill_positions=make_positions(mask), sample_prefill_last_logits=logits,
    )


def required_keys(ref: dict) -> list[str]:
    """Keys a pi0-FAST reference file must hold before the model is built."""
    cameras = read_meta(ref).get("camera_order")
    if not isinstance(cameras, list) or not cameras:
        raise CannotCheck("'meta/json' has no 'camera_order' list")
    images = [f"in/{kind}/{c}" for c in cameras for kind in ("image_u8", "image_mask")]
    tokens = [p + t for p in ("in/", "in/sample/") for t in TOKENS]
    return ["meta/action_dim", "meta/action_horizon", "meta/max_token_len", "in/state", *images, *tokens, *(f"out/{n}" for n in OUTPUTS)]


def check_pi0fast(ref: dict) -> list[Row]:
    require_keys(ref, required_keys(ref))
    model, obs, sample_obs = build_reference_model(ref)
    ours = _loss_pass(model, obs)
    ours.update(_prefill_pass(model, sample_obs))
    steps = int(ref["out/output_tokens"].shape[1])
    ours["output_tokens"] = model.generate(jax.random.key(0), sample_obs, max_steps=steps, openpi_positions=True)
    # logits_argmax: ties of float32 logits could legitimately flip; it is reported exact anyway
    return compare(ours, ref, exact=("output_tokens", "logits_argmax"))
