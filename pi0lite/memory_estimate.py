"""The closed-form per-device memory of pi0 / pi0.5 beside XLA's numbers in :mod:`pi0lite.memory`:
parameters + gradients + optimiser state (+ EMA) + activations, counted by hand (see that module
for the modes: ``inference`` bf16 batch 1; ``lora`` and ``full`` one AdamW step, batch 32).
GB = 1e9 bytes, per device.
"""

from __future__ import annotations

import functools
import math

import jax
from flax import nnx

from pi0lite.config import PI0, PI05, Pi0Config
from pi0lite.pi0 import Pi0

MODELS = {"PI0": PI0, "PI05": PI05}
MODES = ("inference", "lora", "full")
TRAIN_BATCH, INFER_BATCH = 32, 1


def model_config(name: str | Pi0Config, mode: str, *, remat: bool = True) -> Pi0Config:
    """The preset ``name`` (or a config) for ``mode`` (LoRA variants for ``lora``), layers scanned,
    remat on/off (tests pass small configs)."""
    from pi0lite.config import lora_variant

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cfg = MODELS[name] if isinstance(name, str) else name
    if mode == "lora":
        cfg = lora_variant(cfg)
    return cfg.replace(scan_layers=True, remat=remat and mode != "inference")


@functools.cache
def param_counts(config: Pi0Config) -> tuple[int, int]:
    """``(all parameters, trainable parameters)`` of ``config`` (eval_shape: nothing allocated)."""
    from pi0lite.lora import trainable_filter

    model = nnx.eval_shape(lambda: Pi0(config, rngs=nnx.Rngs(0)))
    count = lambda f: sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, f)))
    return count(nnx.Param), count(trainable_filter(config))


def layer_activation_bytes(config: Pi0Config, batch: int) -> tuple[int, int]:
    """Bytes one Gemma layer and one SigLIP layer keep for the backward pass (no remat).

    Gemma (bf16, 2 bytes), per token of expert e: residual, normed, attention output, second
    residual (4·D), queries and attention heads (2·N·H), keys and values (2·K·H), gate, up, gelu
    and product (4·F); per example the attention logits/probabilities N·T² in f32 plus a bf16 copy.
    SigLIP (f32 here): per patch 6·W + 2·M, per head logits and probabilities 2·P².
    """
    g = config.paligemma
    tokens = [config.prefix_len, config.suffix_len]
    llm = 0
    for c, t in zip((config.paligemma, config.action_expert), tokens):
        llm += t * (4 * c.width + 2 * c.num_heads * c.head_dim + 2 * c.num_kv_heads * c.head_dim + 4 * c.mlp_dim) * 2
    llm += g.num_heads * sum(tokens) ** 2 * (4 + 2)
    v, p = config.vision, config.vision.num_patches
    vision = len(config.image_keys) * (p * (6 * v.width + 2 * v.mlp_dim) * 4 + v.num_heads * p * p * 2 * 4)
    return llm * batch, vision * batch


def activation_bytes(config: Pi0Config, batch: int, *, remat: bool) -> int:
    """Training activations: every layer's (no remat), or each layer's input plus one layer's
    working set and its gradient (remat: the layer is recomputed in the backward pass)."""
    llm, vision = layer_activation_bytes(config, batch)
    g, v = config.paligemma, config.vision
    if not remat:
        return g.depth * llm + v.depth * vision
    residual = batch * (config.prefix_len * g.width + config.suffix_len * config.action_expert.width) * 2
    patches = batch * len(config.image_keys) * v.num_patches * v.width * 4
    return g.depth * residual + v.depth * patches + 2 * max(llm, vision)


def estimate(name: str | Pi0Config, mode: str, fsdp: int, *, remat: bool = True, batch: int | None = None) -> dict:
    """Closed-form per-device bytes: parameters + gradients + optimiser state (+ EMA) + activations."""
    config = model_config(name, mode, remat=remat)
    total, trainable = param_counts(config)
    if mode == "inference":
        g = config.paligemma
        b = batch or INFER_BATCH
        kv = 2 * g.depth * b * config.prefix_len * g.num_kv_heads * g.head_dim * 2
        act = max(layer_activation_bytes(config, b)) // 2  # forward only: no gradients
        parts = {"parameters": 2 * total / fsdp, "kv_cache": kv, "activations": act}
    else:
        frozen = total - trainable
        parts = {
            "parameters": (4 * trainable + 2 * frozen) / fsdp,
            "gradients": 4 * trainable / fsdp,
            "optimizer": 8 * trainable / fsdp,
            "ema": 4 * total / fsdp if mode == "full" else 0,
            "activations": activation_bytes(config, (batch or TRAIN_BATCH) // fsdp, remat=remat),
        }
    parts["total"] = sum(parts.values())
    return parts
