"""Parity of pi0lite's pi0-FAST with a reference file written by openpi (``model: "fast"``).

``check_pi0fast`` rebuilds the config from the parameter shapes, loads openpi's parameters,
feeds the stored inputs and returns ``(name, max abs error, tolerance)`` per output: the
embedded inputs and masks, the pre-logits, target log-probs and loss of ``compute_loss``, the
prefill of sampling, and the greedy tokens. openpi decoded with positions one higher than
training (its known off-by-one), so the tokens are generated with ``openpi_positions=True``.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pi0lite.masks import make_attn_mask
from pi0lite.openpi.parity_pi0 import reference_sizes
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig

FLOAT_TOL = 1e-4
EXACT = 0.0


def config_from_reference(ref: dict) -> Pi0FastConfig:
    special = json.loads(str(ref["meta/json"])).get("special_tokens", {})
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
    load_params(model, {k[len("param/"):]: v for k, v in ref.items() if k.startswith("param/")})
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


def check_pi0fast(ref: dict) -> list[tuple[str, float, float]]:
    model, obs, sample_obs = build_reference_model(ref)
    ours = _loss_pass(model, obs)
    ours.update(_prefill_pass(model, sample_obs))
    steps = int(ref["out/output_tokens"].shape[1])
    ours["output_tokens"] = model.generate(jax.random.key(0), sample_obs, max_steps=steps, openpi_positions=True)
    rows = []
    for name, value in ours.items():
        expected = ref[f"out/{name}"]
        got = np.asarray(value)
        if got.shape != expected.shape:
            rows.append((name + f" (shape {got.shape} vs {expected.shape})", float("inf"), 0.0))
            continue
        exact = name == "output_tokens" or expected.dtype == bool or np.issubdtype(expected.dtype, np.integer)
        if name == "logits_argmax":  # ties of float32 logits may legitimately flip; report exact anyway
            exact = True
        err = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
        rows.append((name, err, EXACT if exact else FLOAT_TOL))
    return rows
